import type { RowDataPacket } from 'mysql2/promise';
import { verdict, type Check } from '../../../../core/engine/checks/check.js';
import { mentioned, mentions } from '../../../../core/engine/contract/mentions.js';
import type { ContractCheck } from '../../../../core/engine/ports/contract.js';
import { droppedNames, type ContractContext } from './context.js';

/**
 * Stored procedures and functions are compiled when called, so the server lets the DROP through
 * and the routine fails later. Their text is searched for the table and the name: best effort
 * (dynamic SQL is not seen, a same-named column of another table is), so --force may override it.
 */
export const routines: Check<ContractContext> = {
  name: 'routines',
  async run(ctx): Promise<ContractCheck[]> {
    if (ctx.dropped.kind === 'index') return [];
    const { pool, database, table } = ctx;
    const names = droppedNames(ctx);
    const [rows] = await pool.query<RowDataPacket[]>(
      "SELECT ROUTINE_SCHEMA AS s, ROUTINE_NAME AS n, ROUTINE_TYPE AS k, ROUTINE_DEFINITION AS d FROM information_schema.ROUTINES WHERE ROUTINE_DEFINITION LIKE CONCAT('%', ?, '%')",
      [table],
    );
    const users = rows
      .filter((r) => mentions(String(r.d), table) && mentioned(String(r.d), names).length)
      .map((r) => `${String(r.k).toLowerCase()} ${r.s}.${r.n}`);
    return [
      {
        ...verdict(
          'routines',
          users.length === 0,
          `no stored routine mentions ${names.join(', ')} (their text searched: best effort)`,
          `${users.join(', ')} mention${users.length > 1 ? '' : 's'} ${names.join(', ')} of ${database}.${table}; change ${users.length > 1 ? 'them' : 'it'} first, or --force if ${users.length > 1 ? 'they do' : 'it does'} not use it`,
        ),
        overridable: true,
      },
    ];
  },
};
