// The user's ALTER as it reads on a LIKE copy of the table (src/engines/postgres/server/alter-names.ts):
// index and constraint names swapped for their twins', the original's foreign keys left to the cut-over.
// The catalog's answers come from a stand-in client: what is tested is the rewriting, not the queries.
import { describe, expect, it } from 'vitest';
import { alterOnCopy, foreignKeyClauses } from '../../../../../src/engines/postgres/server/alter-names.js';
import { dollarQuoted } from '../../../../../src/engines/postgres/server/dollar-quote.js';
import type { Client } from '../../../../../src/engines/postgres/server/connect.js';

/** The original (oid 10) and its copy (oid 20): their indexes in OID order, and the original's foreign keys. */
function catalog(originals: string[], copies: string[], foreignKeys: string[]): Client {
  const query = async (sql: string, params: string[]) => {
    if (sql.includes('::regclass::oid')) return { rows: [{ oid: params[0] === '"public"."orders"' ? '10' : '20' }] };
    if (sql.includes('FROM pg_index')) return { rows: (params[0] === '10' ? originals : copies).map((relname) => ({ relname })) };
    if (sql.includes("contype = 'f'")) return { rows: foreignKeys.map((conname) => ({ conname })) };
    throw new Error(`unexpected query: ${sql}`);
  };
  return { query } as unknown as Client;
}

const client = catalog(['orders_pkey', 'Orders_U', 'orders_v_idx'], ['orders__new_pkey', 'orders__new_u_key', 'orders__new_v_idx'], ['fk_parent']);

describe('alterOnCopy', () => {
  it("names the copy's twin of each index or constraint the clause names, quoted or folded, and keeps the rest", async () => {
    const alter = 'CLUSTER ON Orders_Pkey, DROP CONSTRAINT "Orders_U" CASCADE, ADD CONSTRAINT pk PRIMARY KEY USING INDEX orders_v_idx, ADD COLUMN n int';
    expect(await alterOnCopy(client, alter, '"public"."orders"', '"public"."orders__new"')).toBe(
      'CLUSTER ON "orders__new_pkey", DROP CONSTRAINT "orders__new_u_key" CASCADE, ADD CONSTRAINT pk PRIMARY KEY USING INDEX "orders__new_v_idx", ADD COLUMN n int',
    );
  });

  it('leaves a name that is no index of the original as written ("Orders_U" folded is another name)', async () => {
    expect(await alterOnCopy(client, 'DROP CONSTRAINT orders_u, REPLICA IDENTITY USING INDEX other', '"public"."orders"', 'c')).toBe(
      'DROP CONSTRAINT orders_u, REPLICA IDENTITY USING INDEX other',
    );
  });

  it("leaves the clauses on the original's foreign keys out, and gives null when nothing else is left", async () => {
    expect(await alterOnCopy(client, 'DROP CONSTRAINT fk_parent, ADD COLUMN n int', '"public"."orders"', 'c')).toBe('ADD COLUMN n int');
    expect(await alterOnCopy(client, 'VALIDATE CONSTRAINT fk_parent', '"public"."orders"', 'c')).toBeNull();
  });
});

describe('foreignKeyClauses', () => {
  it('finds DROP, ALTER, RENAME and VALIDATE of a foreign key, with what a rename makes of it', async () => {
    const alter =
      'DROP CONSTRAINT IF EXISTS fk_parent, RENAME CONSTRAINT FK_PARENT TO "Fk_New", VALIDATE CONSTRAINT fk_parent, ALTER CONSTRAINT fk_parent DEFERRABLE, DROP CONSTRAINT orders_pkey';
    expect(await foreignKeyClauses(client, '10', alter)).toEqual([
      { sql: 'DROP CONSTRAINT IF EXISTS fk_parent', name: 'fk_parent', validates: false, renamedTo: null },
      { sql: 'RENAME CONSTRAINT FK_PARENT TO "Fk_New"', name: 'fk_parent', validates: false, renamedTo: 'Fk_New' },
      { sql: 'VALIDATE CONSTRAINT fk_parent', name: 'fk_parent', validates: true, renamedTo: null },
      { sql: 'ALTER CONSTRAINT fk_parent DEFERRABLE', name: 'fk_parent', validates: false, renamedTo: null },
    ]);
  });
});

describe('dollarQuoted', () => {
  it('picks a tag the body does not hold', () => {
    expect(dollarQuoted('SELECT 1')).toBe('$shadowcut$SELECT 1$shadowcut$');
    expect(dollarQuoted('a $shadowcut$ b $shadowcut_1$')).toBe('$shadowcut_2$a $shadowcut$ b $shadowcut_1$$shadowcut_2$');
  });
});
