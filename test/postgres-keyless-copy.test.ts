import { describe, expect, it } from 'vitest';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { silentReporter } from '../src/core/reporter.js';
import { expectMirrored, migrateOn, useDatabase } from './support/fixture.js';
import { killDuringPhase } from './support/kill.js';
import { postgresDatabase } from './support/pg.js';

// The copy fills a heap with no index, not even the key's, and the key is built before any change
// is applied (src/engines/postgres/copy/key-build.ts). What must hold around that.
describe('PostgreSQL: the copy into a table with no index', () => {
  const db = useDatabase(postgresDatabase, 'kl_t', 'kl_mirror');
  const alter = 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note text';
  const create = (t: string) => `CREATE TABLE ${t} (id int PRIMARY KEY, qty int NOT NULL, body text); CREATE INDEX ON ${t} (qty)`;

  async function seed(rows: number) {
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'kl_t', '--drop-old']).code).toBe(0);
    await db.drop('kl_t', 'kl_mirror');
    for (const t of ['kl_t', 'kl_mirror']) {
      await db.query(create(t));
      await db.query(`INSERT INTO ${t} SELECT g, g % 50, repeat('b', g % 200) FROM generate_series(1, ${rows}) g`);
    }
  }

  it('killed with a chunk in the heap past its checkpoint: the resumed run builds the key first and copies that chunk again', async () => {
    await seed(100_000);
    const crash = await killDuringPhase(
      ['--url', db.url, '--table', 'kl_t', '--alter', alter, '--chunk-time-ms', '10', '--max-rows-per-sec', '20000'],
      'copy',
      1500,
    );
    expect(crash.killed, `the run ended before the copy (exit ${crash.exitCode}): ${crash.stderr}`).toBe(true);
    // The dead run's shadow is a bare heap.
    expect(await db.indexes('kl_t__new')).toEqual([]);
    const state = await db.query('SELECT checkpoint FROM kl_t__state');
    // The sealed document's body is readable: where the dead run's copy stood.
    const upTo = Number(JSON.parse(JSON.parse(String(state[0][0])).body).copiedUpTo?.[0] ?? 0);
    expect(upTo).toBeGreaterThan(0);
    // A chunk that committed after the last checkpoint, as a kill between the two leaves it.
    await db.query(`DELETE FROM kl_t__new WHERE id > ${upTo}`);
    await db.query(`INSERT INTO kl_t__new (id, qty, body) SELECT id, qty, body FROM kl_t WHERE id > ${upTo} AND id <= ${upTo + 500}`);

    const result = await migrateOn(db, 'kl_t', alter, { resume: true });
    expect(result.resumed).toBe(true);
    // The rows past the checkpoint were replaced, not doubled: the first round found nothing to repair.
    expect(result.checksumRounds).toBe(1);
    await db.query(`ALTER TABLE kl_mirror ${alter}`);
    await expectMirrored(db, 'kl_t', 'kl_mirror');
  });

  it('changes held for the whole copy keep the stream open past wal_sender_timeout', async () => {
    await seed(40_000);
    // More keys changed during the copy than the change buffer holds (20,000): the reader pauses,
    // and stays paused until the key is built, longer than the walsender's timeout, set to 3 seconds.
    const url = `${db.url}${db.url.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c wal_sender_timeout=3s')}`;
    const engine = await createPostgresEngine(url);
    const warnings: string[] = [];
    let updated = false;
    try {
      await migrateOn(
        db,
        'kl_t',
        alter,
        {
          chunkTimeMs: 10,
          maxRowsPerSec: 5000,
          reporter: { ...silentReporter, warn: (message: string) => void warnings.push(message) },
          hook: async (event) => {
            if (event !== 'before-copy' || updated) return;
            updated = true;
            for (const t of ['kl_t', 'kl_mirror']) await db.query(`UPDATE ${t} SET qty = qty + 1 WHERE id <= 30000`);
          },
        },
        { engine, request: { capture: 'stream' } },
      );
    } finally {
      await engine.close();
    }
    expect(updated).toBe(true);
    expect(warnings.filter((w) => /change stream lost/.test(w))).toEqual([]);
    await db.query(`ALTER TABLE kl_mirror ${alter}`);
    await expectMirrored(db, 'kl_t', 'kl_mirror');
  });
});
