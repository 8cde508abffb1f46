// The server proves the copy's column mapping (docs/invariants.md, invariant 8): sampled rows go through the
// user's own ALTER on a probe and through the copy's mapping, and must agree column by column,
// before the copy and again at verification. The checksum compares through the same mapping, so
// without this proof a wrong mapping ends in "parity proven".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proveMapping } from '../src/core/preflight/mapping-proof.js';
import type { Engine, MigrationRequest } from '../src/core/engine/types.js';
import { databases, migrateOn, type Database } from './support/fixture.js';

/** `engine`, except that the plan's copy fills column `a` from `b` and `b` from `a`: a mapping that is wrong. */
function swappingColumns(engine: Engine): Engine {
  const prepare = async (request: MigrationRequest) => {
    const { plan } = await engine.prepare(request);
    const columns = (plan.detail as { columns: { source: string; target: string }[] }).columns;
    const a = columns.find((c) => /^"?a"?$/.test(c.source))!;
    const b = columns.find((c) => /^"?b"?$/.test(c.source))!;
    [a.source, b.source] = [b.source, a.source];
    // Made again from the altered plan, as a resumed run makes its migration from the checkpoint's.
    return engine.resume(plan);
  };
  return new Proxy(engine, {
    get(target, prop) {
      if (prop === 'prepare') return prepare;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe.each(databases)('$name: the server proves the column mapping', ({ open }) => {
  let db: Database;
  const table = 'mp_t';

  beforeAll(() => {
    db = open();
  });
  afterAll(() => db.close());

  async function fill(rows: number, b: string) {
    await db.drop(table);
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, a VARCHAR(20), b VARCHAR(20))`);
    await db.query(`INSERT INTO ${table} (id, a, b) SELECT g, 'same', ${b} FROM (${db.series(rows)}) s`);
  }

  it('refuses a wrong mapping before anything is created, naming the column', async () => {
    await fill(3000, `'other'`);
    const engine = swappingColumns(await db.engine());
    try {
      await expect(migrateOn(db, table, 'ADD COLUMN c INT', {}, { engine })).rejects.toThrow(
        /the copy would not give what the ALTER gives for column a in 2000 of 2000 sampled rows \(key \d+: the ALTER gives 'same', the copy 'other'\)/,
      );
      expect(await db.query(`SELECT count(*) FROM ${table}__new`).catch(() => 'gone')).toBe('gone');
    } finally {
      await engine.close();
    }
  });

  it('proves it again at verification, on rows written since', async () => {
    // a = b everywhere at first, so the swapped mapping looks right to the first proof.
    await fill(3000, `'same'`);
    const engine = swappingColumns(await db.engine());
    try {
      const run = migrateOn(
        db,
        table,
        'ADD COLUMN c INT',
        {
          hook: async (event) => {
            if (event === 'before-copy') await db.query(`UPDATE ${table} SET b = 'later' WHERE id > 100`);
          },
        },
        { engine },
      );
      await expect(run).rejects.toThrow(/the copy would not give what the ALTER gives for column a/);
    } finally {
      await engine.close();
    }
    expect(await db.query(`SELECT count(*) FROM ${table}__new`).catch(() => 'gone')).toBe('gone');
  });

  it('samples a table the copy takes in one chunk at verification too', async () => {
    // 1000 rows: the copy's first chunk (1000 rows) ends on the last key, and rows were only ever
    // taken after the chunks' ends, so the proof at verification once sampled none.
    await fill(1000, `'same'`);
    const engine = swappingColumns(await db.engine());
    try {
      const run = migrateOn(
        db,
        table,
        'ADD COLUMN c INT',
        {
          hook: async (event) => {
            if (event === 'before-copy') await db.query(`UPDATE ${table} SET b = 'later'`);
          },
        },
        { engine },
      );
      await expect(run).rejects.toThrow(/the copy would not give what the ALTER gives for column a in 1000 of 1000 sampled rows/);
    } finally {
      await engine.close();
    }
    expect(await db.query(`SELECT count(*) FROM ${table}__new`).catch(() => 'gone')).toBe('gone');
  });

  it('refuses up front when the server’s own ALTER fails on the rows', async () => {
    await fill(100, `'much too long for it'`);
    const alter = db.kind === 'mysql' ? 'MODIFY b VARCHAR(5)' : 'ALTER COLUMN b TYPE varchar(5)';
    await expect(migrateOn(db, table, alter)).rejects.toThrow(
      /the ALTER fails on the table's rows \(a native ALTER would stop the same way\): .*(too long|truncated)/i,
    );
    expect(await db.query(`SELECT count(*) FROM ${table}__new`).catch(() => 'gone')).toBe('gone');
  });

  it('leaves columns the server fills per row out of the comparison, and compares the rest', async () => {
    await fill(500, `'x'`);
    const engine = await db.engine();
    try {
      const alter =
        db.kind === 'mysql'
          ? 'ADD COLUMN u CHAR(36) DEFAULT (UUID()), ADD COLUMN at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6), ADD COLUMN d INT DEFAULT 7'
          : 'ADD COLUMN u float8 DEFAULT random(), ADD COLUMN at timestamptz DEFAULT now(), ADD COLUMN d int DEFAULT 7';
      const proof = await proveMapping(await engine.prepare({ url: db.url, table, alter }), null);
      expect(proof.rows).toBe(500);
      expect(proof.notCompared).toEqual(['u']);
    } finally {
      await engine.close();
    }
  });
});

describe.each(databases)('$name: ALTER spellings the mapping once got wrong, against the native ALTER', ({ open }) => {
  let db: Database;
  beforeAll(() => {
    db = open();
  });
  afterAll(() => db.close());

  const cases = (kind: string) =>
    kind === 'mysql'
      ? [
          "RENAME COLUMN status TO old_status, ADD COLUMN status VARCHAR(20) NOT NULL DEFAULT 'new'",
          "CHANGE status old_status VARCHAR(20), ADD COLUMN status VARCHAR(20) NOT NULL DEFAULT 'new'",
          "DROP COLUMN status, ADD COLUMN status VARCHAR(20) NOT NULL DEFAULT 'new'",
          'RENAME COLUMN status TO amount2, RENAME COLUMN amount TO status',
        ]
      : [
          'ALTER COLUMN amount TYPE bigint USING(amount*100)::bigint',
          'ALTER amount TYPE numeric(14,2)USING(amount/100)',
          "ALTER COLUMN amount SET DATA TYPE text USING\n'$' || amount::text",
          "DROP COLUMN status, ADD COLUMN status varchar(20) NOT NULL DEFAULT 'new'",
        ];

  it.each([0, 1, 2, 3])('case %i gives what the server gives', async (i) => {
    const alter = cases(db.kind)[i];
    await db.drop('sp_t', 'sp_m');
    for (const t of ['sp_t', 'sp_m']) {
      await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, status VARCHAR(20), amount DECIMAL(10,2))`);
      await db.query(`INSERT INTO ${t} (id, status, amount) SELECT g, 'active', g + 0.34 FROM (${db.series(300)}) s`);
    }
    await migrateOn(db, 'sp_t', alter);
    await db.query(`ALTER TABLE sp_m ${alter}`);
    expect(await db.differences('sp_t', 'sp_m')).toEqual([]);
  });

  // Found by the chaos tester (PostgreSQL, seeds 2 and 7): a constraint's index name lives in the
  // schema, so the proof's second probe, and at verification the shadow, already held it, and a
  // valid ALTER was refused as if it failed on the rows.
  it('proves an ALTER that adds a named unique constraint, before the copy and at verification', async () => {
    await db.drop('sp_uq');
    await db.query('CREATE TABLE sp_uq (id INT PRIMARY KEY, code INT)');
    await db.query(`INSERT INTO sp_uq (id, code) SELECT g, g FROM (${db.series(500)}) s`);
    const result = await migrateOn(db, 'sp_uq', 'ADD CONSTRAINT sp_uq_code UNIQUE (code)', { dropOld: true });
    expect(result.mappingProofs).toHaveLength(2);
    await expect(db.query('INSERT INTO sp_uq (id, code) VALUES (501, 7)')).rejects.toThrow(/sp_uq_code/);
  });
});
