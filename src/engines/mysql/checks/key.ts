import { verdict, type Check } from '../../../core/engine/checks/check.js';
import type { MysqlCheckContext } from './context.js';

const temporal = (type: string) => (/^timestamp\b/i.test(type) ? 'timestamp' : /^datetime\b/i.test(type) ? 'datetime' : null);

/** The key's values travel as text and order the chunks: they must be exact, and keep their order and meaning. */
export const key: Check<MysqlCheckContext> = {
  name: 'key',
  async run({ plan, zone }) {
    const before = plan.keyColumns.map((c) => plan.original.columns.find((x) => x.name === c)!);
    const after = plan.shadowKeyColumns.map((name) => plan.shadowShape.columns.find((c) => c.name.toLowerCase() === name.toLowerCase())!);
    const collated = after.filter((a, i) => a.collation !== before[i].collation).map((c) => c.name);
    const zoned = after.filter((a, i) => temporal(a.type) !== temporal(before[i].type) && temporal(a.type) && temporal(before[i].type));
    const timestamps = before.filter((c) => temporal(c.type) === 'timestamp').map((c) => c.name);
    return [
      verdict(
        'key type',
        before.every((c) => !/^(float|double|real)\b/i.test(c.type)),
        'exact',
        `the key ${plan.keyIndex} has an approximate (FLOAT/DOUBLE) column; give the table an exact PRIMARY KEY first`,
      ),
      verdict(
        'key collation',
        collated.length === 0,
        'unchanged',
        `the ALTER changes the collation of key column(s) ${collated.join(', ')}, which changes row order; do that in a separate blocking ALTER`,
      ),
      verdict(
        'key time zone',
        zoned.length === 0,
        'unchanged',
        `the ALTER changes key column(s) ${zoned.map((c) => c.name).join(', ')} between DATETIME and TIMESTAMP, a time-zone dependent conversion of the key; do that in a separate blocking ALTER`,
      ),
      verdict(
        'timestamp key',
        timestamps.length === 0 || zone.fixed,
        'unambiguous',
        `key column(s) ${timestamps.join(', ')} are TIMESTAMP and the server's time zone (${zone.name}) has daylight saving, so their text is ambiguous once a year; set time_zone to UTC or a fixed offset`,
      ),
    ];
  },
};
