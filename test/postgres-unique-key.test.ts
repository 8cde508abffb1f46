import { describe, expect, it } from 'vitest';
import { expectMirrored, migrateOn, useDatabase } from './support/fixture.js';
import { postgresDatabase } from './support/pg.js';
import { MirrorWorkload } from './support/workload.js';
import { waitUntil } from './support/wait.js';

/**
 * A table with no primary key but a unique index on NOT NULL columns (issue 52 item 2), as
 * pg_repack takes it: the stream cannot name the rows its updates and deletes touch (and publishing
 * the table would make them fail), so the run keys by that index and follows changes by triggers.
 */
describe('PostgreSQL: a table keyed by a unique index on NOT NULL columns', () => {
  const db = useDatabase(postgresDatabase, 'uk_t', 'uk_mirror');
  const create = (t: string) => `CREATE TABLE ${t} (a int NOT NULL, b text NOT NULL, n int, note text, UNIQUE (a, b))`;
  const alter = 'ALTER COLUMN n TYPE bigint, ADD COLUMN extra int';
  const rows = 6000;

  async function seed(): Promise<void> {
    await db.drop('uk_t', 'uk_mirror');
    for (const t of ['uk_t', 'uk_mirror']) {
      await db.query(create(t));
      await db.query(`INSERT INTO ${t} SELECT g, 'k' || (g % 7), g % 100, NULL FROM generate_series(1, ${rows}) g`);
    }
  }

  it('is migrated under writes that change the key, delete and insert, and equals a mirror given the native ALTER', async () => {
    await seed();
    const load = new MirrorWorkload(db, ['uk_t', 'uk_mirror'], (w) => {
      const a = 1 + w + 3 * Math.floor(Math.random() * (rows / 3));
      const r = Math.random();
      if (r < 0.35) return { sql: 'UPDATE {t} SET n = n + 1, note = $2 WHERE a = $1', values: [a, `w${w}`] };
      // The key moves: a row takes a key no other worker touches.
      if (r < 0.55) return { sql: `UPDATE {t} SET a = a + ${rows * 10}, b = b || 'm' WHERE a = $1`, values: [a] };
      if (r < 0.75) return { sql: 'DELETE FROM {t} WHERE a = $1', values: [a] };
      const fresh = rows * 100 + w + 3 * Math.floor(Math.random() * 1_000_000);
      return { sql: `INSERT INTO {t} VALUES ($1, 'new', $2, NULL) ON CONFLICT DO NOTHING`, values: [fresh, w] };
    });
    load.start();
    let result;
    try {
      // Writes while the copy runs, and between its end and the cut-over.
      const more = async (n: number) => {
        const until = load.stats.transactions + n;
        await waitUntil(`${n} more writes`, () => load.stats.transactions >= until, 30_000);
      };
      result = await migrateOn(db, 'uk_t', alter, {
        chunkTimeMs: 20,
        hook: async (event) => {
          if (event === 'before-copy' || event === 'copy-complete') await more(40);
        },
      });
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    expect(load.stats.transactions).toBeGreaterThanOrEqual(80);
    expect(result.rowsCopied).toBeGreaterThan(0);
    // No publication was made for it: one would have made the application's UPDATEs fail.
    expect(await db.query(`SELECT pubname FROM pg_publication_tables WHERE tablename IN ('uk_t', 'uk_t__old')`)).toEqual([]);
    await db.query(`ALTER TABLE uk_mirror ${alter}`);
    await expectMirrored(db, 'uk_t', 'uk_mirror');
  });

  it('--capture stream is refused in one line, naming the reason and the way, and nothing is made', async () => {
    await seed();
    const run = db.cli(['migrate', '--url', '$URL', '--table', 'uk_t', '--alter', alter, '--capture', 'stream', '--force-copy', '--execute']);
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/--capture stream: public\.uk_t has no primary key, so the change stream cannot name the rows .*; use --capture trigger/);
    expect(await db.helpers('uk_t')).toEqual([]);
  });

  it('a table with neither a primary key nor a unique NOT NULL index is still refused in one line', async () => {
    await db.drop('uk_t');
    await db.query('CREATE TABLE uk_t (a int, b text, UNIQUE (a))');
    const run = db.cli([
      'migrate',
      '--url',
      '$URL',
      '--table',
      'uk_t',
      '--alter',
      alter.replace('ALTER COLUMN n TYPE bigint, ', ''),
      '--force-copy',
      '--execute',
    ]);
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/has no primary key and no unique index on NOT NULL columns/);
    expect(await db.helpers('uk_t')).toEqual([]);
  });
});
