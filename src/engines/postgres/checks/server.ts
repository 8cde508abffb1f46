import { verdict, type Check } from '../../../core/engine/checks/check.js';
import type { PgCheckContext } from './context.js';
import { streamSettings } from './logical-decoding.js';

/** The change stream is a logical replication slot read by a WAL sender, with pgoutput's messages; triggers need none of it. */
export const server: Check<PgCheckContext> = {
  name: 'server settings',
  async run({ pool, capture }) {
    const { rows } = await pool.query(`SELECT current_setting('server_version_num')::int AS version`);
    const version = Number(rows[0].version);
    return [
      verdict('server version', version >= 140000, `PostgreSQL ${version}`, `PostgreSQL ${version} is too old: shadowcut needs 14 or later`),
      ...(capture === 'stream' ? await streamSettings(pool) : []),
    ];
  },
};
