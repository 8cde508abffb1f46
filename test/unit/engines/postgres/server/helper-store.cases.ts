// The helper tables' reads (src/engines/postgres/server/helper-store.ts): rows in the order of the
// table's key. Every column is read back as text under its own name, and a bare ORDER BY name means
// that output column: the key sorted as text, which put history id 100 before 98. A stand-in pool
// answers the ownership check and records the statement: what is tested is the ORDER BY it sends.
import { expect, it } from 'vitest';
import type pg from 'pg';
import { PgHelperTables } from '../../../../../src/engines/postgres/server/helper-store.js';

it("orders a helper's rows by the table's own key column, qualified, not by the text read back under its name", async () => {
  const sent: string[] = [];
  const query = async (sql: string) => {
    sent.push(sql);
    if (sql.includes('FROM pg_class c JOIN pg_namespace')) {
      return {
        rows: [
          {
            relkind: 'r',
            owner: 'app',
            ours: true,
            comment: 'shadowcut: the schema change timeline of each table',
            rls: false,
            triggers: '{}',
            rules: '{}',
            policies: '{}',
            writers: '{}',
          },
        ],
      };
    }
    return { rows: [] };
  };
  const pool = { connect: async () => ({ query, release: () => undefined }) } as unknown as pg.Pool;
  const layout = {
    name: 'shadowcut_history',
    purpose: 'p',
    columns: [
      { name: 'id', type: 'serial' as const },
      { name: 'table_name', type: 'text' as const },
    ],
  };
  await new PgHelperTables(pool).table(layout, 'public').select({ table_name: 'public.t' });
  const select = sent.find((s) => s.startsWith('SELECT "id"::text AS "id"'));
  expect(select).toMatch(/ ORDER BY "public"\."shadowcut_history"\."id"$/);
});
