import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { CheckResult } from '../../core/types.js';
import type { ServerZone } from './connect.js';
import type { MysqlPlan } from './plan.js';

/** Everything that would make the run unsafe, each failure naming its fix. */
export async function runChecks(pool: Pool, plan: MysqlPlan, zone: ServerZone): Promise<CheckResult[]> {
  const vars = await variables(pool);
  const t = `${plan.database}.${plan.table}`;
  const results: CheckResult[] = [];
  const check = (name: string, ok: boolean, good: string, bad: string) =>
    results.push({ name, ok, message: ok ? good : bad });

  check('engine', plan.facts.engine === 'InnoDB', 'InnoDB', `${t} uses ${plan.facts.engine}; only InnoDB tables can be changed online`);
  check('log_bin', vars.log_bin === 'ON' || vars.log_bin === '1', 'binlog on', 'binary logging is off: start the server with log_bin');
  check('binlog_format', vars.binlog_format === 'ROW', 'ROW', `binlog_format is ${vars.binlog_format}: SET GLOBAL binlog_format = 'ROW' (and in the server config)`);
  check('binlog_row_image', vars.binlog_row_image === 'FULL', 'FULL', `binlog_row_image is ${vars.binlog_row_image}: SET GLOBAL binlog_row_image = 'FULL'`);
  if (vars.binlog_transaction_compression !== undefined) {
    check('binlog_transaction_compression', vars.binlog_transaction_compression !== 'ON', 'off',
      'binlog_transaction_compression is ON; the binlog reader cannot decode compressed transactions: SET GLOBAL binlog_transaction_compression = OFF');
  }
  if (vars.binlog_row_value_options !== undefined) {
    check('binlog_row_value_options', !/PARTIAL_JSON/i.test(vars.binlog_row_value_options), 'full JSON images',
      "binlog_row_value_options is PARTIAL_JSON: SET GLOBAL binlog_row_value_options = ''");
  }
  // Keys from other tables would follow the original to its __old name at the RENAME: never allowed.
  check('foreign keys in', plan.facts.referencedBy.length === 0, 'none',
    `${t} is referenced by foreign keys (${plan.facts.referencedBy.join(', ')}); not supported yet: drop them for the migration or use a blocking ALTER`);
  // Keys to other tables are not copied by CREATE TABLE ... LIKE: allowed only when the operator says to discard them.
  check('foreign keys out', plan.facts.foreignKeys.length === 0 || plan.discardForeignKeys,
    plan.facts.foreignKeys.length ? `discarded on request: ${plan.facts.foreignKeys.join(', ')}` : 'none',
    `${t} has foreign keys (${plan.facts.foreignKeys.join(', ')}); the new table would not have them: pass --discard-foreign-keys to migrate without them, or use a blocking ALTER`);
  // InnoDB makes cascaded changes itself: they reach the binlog as no row event at all, so the copy
  // would keep rows the original lost. Discarding the key does not stop the original cascading.
  check('cascading foreign keys', plan.facts.cascadingInto.length === 0, 'none',
    `${t} has foreign keys whose changes cascade into it (${plan.facts.cascadingInto.join(', ')}); cascaded changes are not in the binlog: drop them for the migration, make them RESTRICT, or use a blocking ALTER`);
  check('triggers', plan.facts.triggers.length === 0 || plan.triggers.length > 0,
    plan.triggers.length ? `moved at the cut-over: ${plan.triggers.map((x) => `${x.name} -> ${x.newName}`).join(', ')}` : 'none',
    `${t} has triggers (${plan.facts.triggers.join(', ')}); pass --include-triggers to move them to the new table at the cut-over`);
  const keyTypes = plan.keyColumns.map((c) => plan.original.columns.find((x) => x.name === c)!);
  check('key type', keyTypes.every((c) => !/^(float|double|real)\b/i.test(c.type)), 'exact',
    `the key ${plan.keyIndex} has an approximate (FLOAT/DOUBLE) column; give the table an exact PRIMARY KEY first`);
  const keyAfter = plan.shadowKeyColumns.map((name) => plan.shadowShape.columns.find((c) => c.name.toLowerCase() === name.toLowerCase())!);
  const changed = keyAfter.filter((after, i) => after.collation !== keyTypes[i].collation).map((c) => c.name);
  check('key collation', changed.length === 0, 'unchanged',
    `the ALTER changes the collation of key column(s) ${changed.join(', ')}, which changes row order; do that in a separate blocking ALTER`);
  const temporal = (type: string) => (/^timestamp\b/i.test(type) ? 'timestamp' : /^datetime\b/i.test(type) ? 'datetime' : null);
  const zoned = keyAfter.filter((after, i) => temporal(after.type) !== temporal(keyTypes[i].type) && temporal(after.type) && temporal(keyTypes[i].type));
  check('key time zone', zoned.length === 0, 'unchanged',
    `the ALTER changes key column(s) ${zoned.map((c) => c.name).join(', ')} between DATETIME and TIMESTAMP, a time-zone dependent conversion of the key; do that in a separate blocking ALTER`);
  const timestampKeys = keyTypes.filter((c) => temporal(c.type) === 'timestamp').map((c) => c.name);
  check('timestamp key', timestampKeys.length === 0 || zone.fixed, 'unambiguous',
    `key column(s) ${timestampKeys.join(', ')} are TIMESTAMP and the server's time zone (${zone.name}) has daylight saving, so their text is ambiguous once a year; set time_zone to UTC or a fixed offset`);
  return results;
}

async function variables(pool: Pool): Promise<Record<string, string>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin','binlog_format','binlog_row_image',
      'binlog_transaction_compression','binlog_row_value_options')`,
  );
  return Object.fromEntries(rows.map((r) => [String(r.Variable_name), String(r.Value)]));
}

const NEEDED_ON_DB = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'ALTER', 'LOCK TABLES', 'CREATE TEMPORARY TABLES'];

/** Grants of the current user, globally and on the database; a role-based setup is trusted. */
export async function missingPrivileges(pool: Pool, database: string): Promise<string[]> {
  const [[me]] = await pool.query<RowDataPacket[]>("SELECT CURRENT_USER() AS u, IFNULL(CURRENT_ROLE(), 'NONE') AS r").catch(
    () => pool.query<RowDataPacket[]>("SELECT CURRENT_USER() AS u, 'NONE' AS r"),
  );
  if (String(me.r) !== 'NONE') return [];
  const [user, host] = String(me.u).split('@');
  const grantee = `'${user}'@'${host}'`;
  const [global] = await pool.query<RowDataPacket[]>('SELECT PRIVILEGE_TYPE p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?', [grantee]);
  const [db] = await pool.query<RowDataPacket[]>(
    'SELECT PRIVILEGE_TYPE p FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND ? LIKE TABLE_SCHEMA',
    [grantee, database],
  );
  const have = new Set([...global, ...db].map((r) => String(r.p)));
  const missing = NEEDED_ON_DB.filter((p) => !have.has(p));
  if (!have.has('REPLICATION SLAVE')) missing.push('REPLICATION SLAVE');
  if (!have.has('REPLICATION CLIENT') && !have.has('BINLOG MONITOR')) missing.push('REPLICATION CLIENT (BINLOG MONITOR on MariaDB)');
  return missing;
}
