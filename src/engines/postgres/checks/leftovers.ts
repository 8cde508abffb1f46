import { verdict, type Check } from '../../../core/engine/checks/check.js';
import { checkpointLeftOver } from '../../../core/engine/state/checkpoint.js';
import { helperNames } from '../server/helper-names.js';
import { ident, isTrue, qualified } from '../server/sql.js';
import type { PgCheckContext } from './context.js';
import { PgTriggerLog } from '../capture/trigger/log.js';
import { keptByRevert } from '../schema/reverse-plan.js';

/**
 * A dead run's checkpoint, tables, slot or publication: another run would take their names, and a
 * slot keeps WAL. A resumed run is the one that continues them. An old table (`<name>__old`,
 * `__old_<n>`) is none of them: an earlier run kept it, or a user made it, and the plan chose a
 * free name beside it.
 */
export const leftovers: Check<PgCheckContext> = {
  name: 'leftovers',
  async run({ pool, table: t, detail: d, resuming, discardUnsaved }) {
    if (resuming) return verdict('no leftovers', true, "resuming: the interrupted run's shadow, slot and publication are reused", '');
    const { state, log, reverseCapture } = helperNames(t.schema, t.name);
    const logName = `${t.schema}.${log}`;
    const ours = `relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)`;
    const { rows } = await pool.query(
      `SELECT to_regclass($1) IS NOT NULL AS state, to_regclass($2) IS NOT NULL AS shadow,
              EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $4) AS publication,
              EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass($5) AND ${ours}) AS log,
              EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass($6) AND ${ours}) AS rlog,
              (SELECT coalesce(pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), 'no')
                 FROM pg_replication_slots WHERE slot_name = $3) AS slot_retains`,
      [qualified(t.schema, state), qualified(t.schema, d.shadow), d.slot, d.publication, qualified(t.schema, log), qualified(t.schema, reverseCapture.log)],
    );
    const s = rows[0];
    const table = `${t.schema}.${t.name}`;
    // Named whatever else is left: each slows every write to the table until it is removed.
    // The TRUNCATE trigger on each partition too: the table's own name them all.
    const triggers: string[] = [];
    for (const names of [undefined, reverseCapture]) {
      const found = await new PgTriggerLog(pool, t.schema, t.name, [], names).ourTriggers(pool);
      triggers.push(...found.filter((x) => x.ours && x.table === t.name).map((x) => x.name));
    }
    const stillOn = triggers.map((name) => `capture trigger ${t.schema}.${name} of an earlier run is still on the table, logging every write`);
    if (isTrue(s.state)) {
      const retains = s.slot_retains === null ? '' : ` (its replication slot retains ${s.slot_retains} of WAL)`;
      return verdict('no leftovers', false, '', [checkpointLeftOver(table, retains), ...stillOn].join('; '));
    }
    const fixes: string[] = [];
    if (isTrue(s.shadow)) {
      const kept = await keptByRevert(pool, t.schema, d.shadow);
      fixes.push(`DROP TABLE ${qualified(t.schema, d.shadow)}${kept ? ' (the new table a revert kept; or rename it if you need it)' : ''}`);
    }
    // A resumed set's member with no checkpoint joins the set's stream, which the resumed members follow.
    const setStream = discardUnsaved === true;
    if (s.slot_retains !== null && !setStream) fixes.push(`SELECT pg_drop_replication_slot('${d.slot}') (it retains ${s.slot_retains} of WAL)`);
    if (isTrue(s.publication) && !setStream) fixes.push(`DROP PUBLICATION ${ident(d.publication)}`);
    const logs = [...(isTrue(s.log) ? [logName] : []), ...(isTrue(s.rlog) ? [`${t.schema}.${reverseCapture.log}`] : [])];
    if (triggers.length || logs.length)
      fixes.push(`shadowcut cleanup --url ... --table ${table} (the capture triggers and the log ${logs.join(', ') || logName})`);
    return verdict(
      'no leftovers',
      fixes.length === 0,
      'no helper objects from an earlier run',
      [...stillOn, `helper objects of an earlier run exist; if no shadowcut run is active (or resume it with --resume), remove them: ${fixes.join('; ')}`].join(
        '; ',
      ),
    );
  },
};
