import { afterAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, helperTables, runCli, runCliAsync, schemaOf } from './support/mysql.js';
import { createFkTree, dropFkTree, fkTree, FkTreeWriter } from './support/fk-tree.js';

const ROWS = 20_000;
const ALTER = 'ADD COLUMN extra INT NULL, MODIFY w BIGINT NOT NULL';

// A child whose key to its parent cascades (ON DELETE CASCADE): InnoDB deletes its rows inside the
// parent's statement, with no row event of the child's in the binlog. The run follows the parent's
// events for it (src/engines/mysql/capture/cascades.ts). One writer writes the tree and its mirror
// alike, deleting parents among other writes; the child must end as the mirror's after the native ALTER.
describe('MariaDB: a table its parent cascades into', () => {
  const t = fkTree('fkq');
  let db: mysql.Pool;
  const pool = () => (db ??= adminPool());

  afterAll(async () => {
    await dropFkTree(pool(), t);
    await pool().query(
      'SET foreign_key_checks = 0; DROP TABLE IF EXISTS fkm_child, fkm_child_m, fkm_child__old, fkm_parent, fkm_parent_m; SET foreign_key_checks = 1',
    );
    await pool().end();
  });

  /** Writes the tree and its mirror alike while `run` goes on; the writer's own judgement must hold. */
  async function underWrites(rows: number, run: () => Promise<{ code: number | null; stderr: string; stdout: string }>) {
    const writer = new FkTreeWriter(pool(), t, rows);
    writer.start();
    const done = await run();
    const stats = await writer.stop();
    expect(done.code, done.stderr).toBe(0);
    expect(stats.errors).toEqual([]);
    expect(stats.mismatches).toEqual([]);
    return done;
  }

  /** Parents the writer deleted that had children: without them the test proves nothing. */
  async function cascadedParents(): Promise<number> {
    const [[row]] = await pool().query<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) n FROM seq_1_to_${ROWS} s LEFT JOIN ${t.mirror.parent} p ON p.id = s.seq WHERE p.id IS NULL`,
    );
    return Number(row.n);
  }

  it('alone, under writes that delete its parents: every cascaded delete reaches the new table, as the mirror', async () => {
    await createFkTree(pool(), t, ROWS);
    const plan = runCli(['plan', '--url', '$URL', '--table', t.real.cascade, '--alter', ALTER, '--force-copy']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(new RegExp(`cascading foreign keys: followed through their parents' row events: ${t.real.cascade}_fk -> ${t.real.parent}`));
    const args = ['migrate', '--force-copy', '--url', '$URL', '--table', t.real.cascade, '--alter', ALTER, '--execute', '--max-rows-per-sec', '1500'];
    await underWrites(ROWS, () => runCliAsync(args));
    expect(await cascadedParents()).toBeGreaterThan(0);
    await pool().query(`ALTER TABLE ${t.mirror.cascade} ${ALTER}`);
    expect(await differences(pool(), t.real.cascade, t.mirror.cascade)).toEqual([]);
    const named = (table: string, side: typeof t.real) => schemaOf(pool(), table).then((s) => s.replaceAll(side.cascade, '<t>').replaceAll(side.parent, '<p>'));
    expect(await named(t.real.cascade, t.real)).toBe(await named(t.mirror.cascade, t.mirror));
    await pool().query(`DROP TABLE ${t.real.cascade}__old`);
  });

  /**
   * The cascading child in a set with `other` (its parent, or its sibling), under the tree's writes:
   * both tables end as the mirror's after the native ALTERs.
   */
  async function setWithChild(other: 'parent' | 'restrict') {
    await createFkTree(pool(), t, ROWS);
    const otherAlter = 'ADD COLUMN extra INT NULL';
    const pairs = ['--table', t.real[other], '--alter', otherAlter, '--table', t.real.cascade, '--alter', ALTER];
    await underWrites(ROWS, () => runCliAsync(['migrate', '--force-copy', '--url', '$URL', ...pairs, '--execute', '--max-rows-per-sec', '1500']));
    expect(await cascadedParents()).toBeGreaterThan(0);
    await pool().query(`ALTER TABLE ${t.mirror.cascade} ${ALTER}`);
    await pool().query(`ALTER TABLE ${t.mirror[other]} ${otherAlter}`);
    expect(await differences(pool(), t.real.cascade, t.mirror.cascade)).toEqual([]);
    expect(await differences(pool(), t.real[other], t.mirror[other])).toEqual([]);
    await pool().query(`DROP TABLE ${t.real.cascade}__old, ${t.real[other]}__old`);
  }

  it('in a set with its parent, under the same writes: both tables as the mirror', () => setWithChild('parent'));

  it("in a set of its parent's two children, the parent outside it: the shared reader follows the parent too", () => setWithChild('restrict'));

  // ON UPDATE CASCADE on a column of the child's own primary key moves its rows to new keys, which are
  // read from the original; ON DELETE SET NULL changes rows in place, found in the shadow.
  it('keys that move with ON UPDATE CASCADE, and ON DELETE SET NULL: as the mirror', async () => {
    await pool().query(
      'SET foreign_key_checks = 0; DROP TABLE IF EXISTS fkm_child, fkm_child_m, fkm_child__old, fkm_parent, fkm_parent_m; SET foreign_key_checks = 1',
    );
    for (const s of ['', '_m']) {
      await pool().query(`CREATE TABLE fkm_parent${s} (id INT PRIMARY KEY, code INT NOT NULL UNIQUE, alt INT NULL UNIQUE) ENGINE=InnoDB`);
      await pool().query(`INSERT INTO fkm_parent${s} SELECT seq, seq, seq FROM seq_1_to_2000`);
      await pool().query(`CREATE TABLE fkm_child${s} (code INT NOT NULL, line INT NOT NULL, alt INT NULL, w INT NOT NULL, PRIMARY KEY (code, line),
        CONSTRAINT fkm_child${s}_code FOREIGN KEY (code) REFERENCES fkm_parent${s} (code) ON UPDATE CASCADE ON DELETE CASCADE,
        CONSTRAINT fkm_child${s}_alt FOREIGN KEY (alt) REFERENCES fkm_parent${s} (alt) ON DELETE SET NULL ON UPDATE SET NULL) ENGINE=InnoDB`);
      await pool().query(`INSERT INTO fkm_child${s} SELECT 1 + seq % 2000, seq, 1 + (seq * 7) % 2000, 0 FROM seq_1_to_${ROWS}`);
    }
    let running = true;
    let writes = 0;
    const writer = (async () => {
      const conn = await pool().getConnection();
      let next = 10_000;
      try {
        while (running) {
          const id = 1 + Math.floor(Math.random() * 2000);
          const r = Math.random();
          const [sql, values] =
            r < 0.4
              ? ['UPDATE {p} SET code = ? WHERE id = ?', [next++, id]]
              : r < 0.6
                ? ['UPDATE {p} SET alt = ? WHERE id = ?', [next++, id]]
                : r < 0.75
                  ? ['DELETE FROM {p} WHERE id = ?', [id]]
                  : ['UPDATE {c} SET w = w + 1 WHERE line = ?', [1 + Math.floor(Math.random() * ROWS)]];
          for (const s of ['', '_m']) await conn.query(String(sql).replace('{p}', `fkm_parent${s}`).replace('{c}', `fkm_child${s}`), values);
          writes++;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      } finally {
        conn.release();
      }
    })();
    const run = await runCliAsync([
      'migrate',
      '--force-copy',
      '--url',
      '$URL',
      '--table',
      'fkm_child',
      '--alter',
      ALTER,
      '--execute',
      '--max-rows-per-sec',
      '3000',
    ]);
    running = false;
    await writer;
    expect(run.code, run.stderr).toBe(0);
    expect(writes).toBeGreaterThan(20);
    await pool().query(`ALTER TABLE fkm_child_m ${ALTER}`);
    expect(await differences(pool(), 'fkm_child', 'fkm_child_m', ['code', 'line'])).toEqual([]);
  });

  // A key to the table itself is followed row by row (mysql-cascade-chains.test.ts).
  it('through triggers, or retyped so that it compares otherwise, is refused in one line and changes nothing', async () => {
    await createFkTree(pool(), t, 200);
    const cases = [
      {
        table: t.real.cascade,
        extra: ['--capture', 'trigger'],
        why: /fkq_cc_fk -> fkq ON DELETE CASCADE ON UPDATE RESTRICT: cascaded changes fire no trigger/,
      },
      // Discarded, the key still cascades on the original until the swap; a retyped column would miss rows.
      {
        table: t.real.cascade,
        extra: ['--discard-foreign-keys'],
        alter: 'MODIFY pid INT UNSIGNED NOT NULL',
        why: /fkq_cc_fk -> fkq .*: column pid would change from int.* to int.* unsigned, so the rows a cascade reaches could not be found/,
      },
    ];
    for (const { table, extra, why, alter } of cases) {
      const before = await schemaOf(pool(), table);
      const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', table, '--alter', alter ?? 'ADD COLUMN x INT', ...extra, '--execute']);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(why);
      expect(await schemaOf(pool(), table)).toBe(before);
      expect(await helperTables(pool(), table)).toEqual([]);
    }
  });
});
