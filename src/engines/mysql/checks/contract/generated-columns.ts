import type { RowDataPacket } from 'mysql2/promise';
import { verdict, type Check } from '../../../../core/engine/checks/check.js';
import { mentioned } from '../../../../core/engine/contract/mentions.js';
import type { ContractContext } from './context.js';

/** A generated column or CHECK constraint computed from a dropped column: the server refuses the DROP. */
export const generatedColumns: Check<ContractContext> = {
  name: 'generated columns',
  async run({ pool, database, table, dropped }) {
    if (dropped.kind !== 'column') return [];
    const [cols] = await pool.query<RowDataPacket[]>(
      "SELECT COLUMN_NAME AS c, GENERATION_EXPRESSION AS e FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COALESCE(GENERATION_EXPRESSION, '') <> ''",
      [database, table],
    );
    const generated = cols.filter((r) => !dropped.columns.includes(String(r.c)) && mentioned(String(r.e), dropped.columns).length).map((r) => String(r.c));
    // MySQL 8.0.16+ and MariaDB both list CHECK constraints here (MariaDB without a TABLE_NAME before 10.5.10: keyed by name only).
    const checks = await pool
      .query<RowDataPacket[]>(
        'SELECT CONSTRAINT_NAME AS n, CHECK_CLAUSE AS e FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?',
        [database, table],
      )
      .then(
        ([rows]) => rows.filter((r) => mentioned(String(r.e), dropped.columns).length).map((r) => `CHECK ${r.n}`),
        () => [] as string[],
      );
    const users = [...generated, ...checks];
    return verdict(
      'generated columns',
      users.length === 0,
      'no generated column or CHECK constraint uses them',
      `${users.join(', ')} of ${database}.${table} ${users.length > 1 ? 'are' : 'is'} computed from ${dropped.columns.join(', ')}; drop or change ${users.length > 1 ? 'them' : 'it'} first`,
    );
  },
};
