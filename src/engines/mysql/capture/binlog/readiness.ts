import type { Pool, RowDataPacket } from 'mysql2/promise';
import { verdict } from '../../../../core/engine/checks/check.js';
import type { CheckResult } from '../../../../core/engine/types.js';
import { grantsOn, missingReplicationPrivileges } from '../../server/grants.js';

/** Why the binlog cannot be followed by this user on this server (empty when it can): what `--capture auto` weighs. */
export async function binlogProblems(pool: Pool, database: string): Promise<string[]> {
  const verdicts = (await binlogVerdicts(pool)).filter((v) => !v.ok);
  // With no binlog at all, its format and image are beside the point.
  const failed = (verdicts.some((v) => v.name === 'log_bin') ? verdicts.filter((v) => v.name === 'log_bin') : verdicts).map((v) => v.message);
  const have = await grantsOn(pool, database);
  const missing = have === null ? [] : missingReplicationPrivileges(have);
  if (missing.length) failed.push(`the user lacks ${missing.join(' and ')}`);
  return failed;
}

export async function binlogVerdicts(pool: Pool): Promise<CheckResult[]> {
  const vars = await binlogVariables(pool);
  const results: CheckResult[] = [
    verdict('log_bin', vars.log_bin === 'ON' || vars.log_bin === '1', 'binlog on', 'binary logging is off: start the server with log_bin'),
    verdict(
      'binlog_format',
      vars.binlog_format === 'ROW',
      'ROW',
      `binlog_format is ${vars.binlog_format}: SET GLOBAL binlog_format = 'ROW' (and in the server config)`,
    ),
    verdict('binlog_row_image', vars.binlog_row_image === 'FULL', 'FULL', `binlog_row_image is ${vars.binlog_row_image}: SET GLOBAL binlog_row_image = 'FULL'`),
  ];
  // A Galera node's binlog holds the other nodes' writes only with log_slave_updates (their appliers' commits).
  if (vars.wsrep_on === 'ON' && vars.log_slave_updates !== undefined) {
    results.push(
      verdict(
        'log_slave_updates',
        vars.log_slave_updates === 'ON',
        "every node's writes",
        "log_slave_updates is OFF on this Galera node: its binlog lacks the other nodes' writes (start the node with log_slave_updates=ON)",
      ),
    );
  }
  // Only where the server has the variable.
  if (vars.binlog_transaction_compression !== undefined) {
    results.push(
      verdict(
        'binlog_transaction_compression',
        vars.binlog_transaction_compression !== 'ON',
        'off',
        'binlog_transaction_compression is ON; the binlog reader cannot decode compressed transactions: SET GLOBAL binlog_transaction_compression = OFF',
      ),
    );
  }
  if (vars.binlog_row_value_options !== undefined) {
    results.push(
      verdict(
        'binlog_row_value_options',
        !/PARTIAL_JSON/i.test(vars.binlog_row_value_options),
        'full JSON images',
        "binlog_row_value_options is PARTIAL_JSON: SET GLOBAL binlog_row_value_options = ''",
      ),
    );
  }
  return results;
}

export async function binlogVariables(pool: Pool): Promise<Record<string, string>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin','binlog_format','binlog_row_image',
      'binlog_transaction_compression','binlog_row_value_options','wsrep_on','log_slave_updates')`,
  );
  return Object.fromEntries(rows.map((r) => [String(r.Variable_name), String(r.Value)]));
}
