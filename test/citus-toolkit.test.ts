// Issue 71, item 1: the expand/contract commands on a Citus table, through the coordinator. backfill
// walks a hash-distributed (or reference) table in keyset batches, each a multi-shard UPDATE Citus runs
// on every node; verify reads it in the same chunks. The oracle is SQL of the test's own on the
// coordinator, and a difference planted on one shard that verify must name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { citusUnavailable, startCitusCluster, type CitusCluster } from './support/citus.js';
import { citusTwins } from './support/citus-twins.js';
import { runCliAsync } from './support/mysql.js';

const unavailable = citusUnavailable();
if (unavailable) console.warn(`citus-toolkit.test.ts skipped: ${unavailable}`);

let cluster: CitusCluster;

const SCHEMA = `
  SET citus.shard_count = 8;
  CREATE TABLE orders (id bigint PRIMARY KEY, k int NOT NULL, note text, note_new text);
  SELECT create_distributed_table('orders', 'id');
  INSERT INTO orders (id, k, note) SELECT g, g % 100, 'n' || g FROM generate_series(1, 20000) g;
  CREATE TABLE copies (id bigint PRIMARY KEY, k int NOT NULL, note text);
  SELECT create_distributed_table('copies', 'id', colocate_with => 'orders');
  INSERT INTO copies SELECT g, g % 100, 'n' || g FROM generate_series(1, 20000) g;
  CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL, name_new text);
  SELECT create_reference_table('countries');
  INSERT INTO countries SELECT 'c' || g, 'name ' || g FROM generate_series(1, 300) g;
  ANALYZE orders;`;

describe.skipIf(unavailable !== null)('Citus: backfill and verify on distributed and reference tables, through the coordinator', () => {
  beforeAll(async () => {
    cluster = await startCitusCluster();
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('backfill under an application that writes both columns: every row filled, verify --expect finds none differing, and names one planted on a shard', async () => {
    const twins = await citusTwins(cluster, 'backfill');
    await twins.setup(SCHEMA);
    const db = twins.live.coordinator;
    // The expand step's application: new rows and changed notes written to both columns, rows deleted.
    let stopped = false;
    let writes = 0;
    const app = (async () => {
      for (let n = 0; !stopped; n++, writes++) {
        const id = 1 + ((n * 7919) % 20000);
        if (n % 3 === 0) await db.query('INSERT INTO orders (id, k, note, note_new) VALUES ($1, 1, $2, $2) ON CONFLICT (id) DO NOTHING', [30000 + n, `i${n}`]);
        else if (n % 3 === 1) await db.query("UPDATE orders SET note = note || '.', note_new = note || '.' WHERE id = $1", [id]);
        else await db.query('DELETE FROM orders WHERE id = $1', [id]);
      }
    })();
    const run = await runCliAsync(['backfill', '--execute', '--table', 'orders', '--set', 'note_new = note', '--url', '$URL'], twins.live.coordinatorUrl);
    stopped = true;
    await app;
    expect(run.code, run.stderr).toBe(0);
    expect(writes).toBeGreaterThan(20);
    // Sized from its shards, not the coordinator's empty shell.
    expect(run.stdout).toMatch(/table: public\.orders, about [1-9]\d{3,} row\(s\)/);
    const left = await db.query('SELECT count(*)::int AS n FROM orders WHERE note_new IS DISTINCT FROM note');
    expect(left.rows[0].n).toBe(0);
    // Still distributed, by the same column, and nothing of the run left on the coordinator.
    const dist = await db.query(`SELECT column_to_column_name(logicalrelid, partkey) AS col FROM pg_dist_partition WHERE logicalrelid = 'orders'::regclass`);
    expect(dist.rows).toEqual([{ col: 'id' }]);
    expect((await db.query(`SELECT to_regclass('orders__state') AS t`)).rows[0].t).toBeNull();

    const clean = await runCliAsync(['verify', '--table', 'orders', '--expect', 'note_new = note', '--url', '$URL'], twins.live.coordinatorUrl);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/every row matched/);
    await db.query("UPDATE orders SET note_new = 'planted' WHERE id = 12345");
    const planted = await runCliAsync(['verify', '--table', 'orders', '--expect', 'note_new = note', '--url', '$URL'], twins.live.coordinatorUrl);
    expect(planted.code).toBe(1);
    expect(planted.stdout).toMatch(/1 row\(s\) differ; the first 1 by id: 12345/);
  });

  it('verify --against a co-located table, and a reference table backfilled then verified', async () => {
    const twins = await citusTwins(cluster, 'against');
    await twins.setup(SCHEMA);
    const db = twins.live.coordinator;
    const same = await runCliAsync(['verify', '--table', 'orders', '--against', 'copies', '--columns', 'k,note', '--url', '$URL'], twins.live.coordinatorUrl);
    expect(same.code, same.stderr).toBe(0);
    await db.query("UPDATE copies SET note = 'other' WHERE id IN (5, 17000)");
    await db.query('DELETE FROM copies WHERE id = 9000');
    const differ = await runCliAsync(['verify', '--table', 'orders', '--against', 'copies', '--columns', 'k,note', '--url', '$URL'], twins.live.coordinatorUrl);
    expect(differ.code).toBe(1);
    expect(differ.stdout).toMatch(/3 row\(s\) differ; the first 3 by id: 5; 9000; 17000/);

    const filled = await runCliAsync(
      ['backfill', '--execute', '--table', 'countries', '--set', 'name_new = upper(name)', '--url', '$URL'],
      twins.live.coordinatorUrl,
    );
    expect(filled.code, filled.stderr).toBe(0);
    // A reference table's copy on every worker took the same batches.
    const { rows: shard } = await db.query(`SELECT shard_name(logicalrelid, shardid) AS name FROM pg_dist_shard WHERE logicalrelid = 'countries'::regclass`);
    for (const worker of twins.live.workers) {
      const { rows } = await worker.query(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE name_new IS DISTINCT FROM upper(name))::int AS off FROM ${shard[0].name}`,
      );
      expect(rows[0]).toEqual({ n: 300, off: 0 });
    }
    const checked = await runCliAsync(['verify', '--table', 'countries', '--expect', 'name_new = upper(name)', '--url', '$URL'], twins.live.coordinatorUrl);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toMatch(/300 row\(s\) examined/);
  });
});
