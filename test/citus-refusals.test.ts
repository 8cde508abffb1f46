// Issue 59, item 1: a Citus table is never turned into a local table. Every command that changes or
// reads a table whole refuses a shape it cannot yet change where its shards are, in one line, exit 2,
// before anything is made on any node; plan sizes a distributed table from its shards; a plain table
// on the coordinator is still migrated as before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { citusUnavailable, startCitusCluster, type CitusCluster } from './support/citus.js';
import { runCliAsync } from './support/mysql.js';

const unavailable = citusUnavailable();
if (unavailable) console.warn(`citus-refusals.test.ts skipped: ${unavailable}`);

let cluster: CitusCluster;

/** Everything a run could have made or changed on one node: relations (shards included), Citus's metadata, streams, triggers, history. */
async function nodeState(db: pg.Pool): Promise<string[]> {
  const queries = [
    `SELECT c.relname || ':' || c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname !~ '^shadowcut_history' ORDER BY 1`,
    `SELECT logicalrelid::text || ':' || partmethod::text || ':' || colocationid FROM pg_dist_partition ORDER BY 1`,
    `SELECT shardid || ':' || logicalrelid::text FROM pg_dist_shard ORDER BY 1`,
    `SELECT slot_name FROM pg_replication_slots ORDER BY 1`,
    `SELECT pubname FROM pg_publication ORDER BY 1`,
    `SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`,
    `SELECT attrelid::regclass::text || '.' || attname || ':' || format_type(atttypid, atttypmod) FROM pg_attribute
      WHERE attnum > 0 AND NOT attisdropped AND attrelid IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'shadowcut_history') ORDER BY 1`,
  ];
  const lines: string[] = [];
  for (const q of queries) lines.push(...(await db.query<{ [k: string]: string }>(q)).rows.map((r) => Object.values(r)[0]));
  return lines;
}

async function clusterState(): Promise<string[][]> {
  const contents = await cluster.coordinator.query<{ c: string }>(
    `SELECT (SELECT count(*) || ':' || sum(hashtext(o::text)) FROM orders o) || '/' || (SELECT count(*) FROM items) AS c`,
  );
  return [[contents.rows[0].c], ...(await Promise.all([cluster.coordinator, ...cluster.workers].map(nodeState)))];
}

describe.skipIf(unavailable !== null)('Citus tables are refused until their shape is supported, nothing made on any node', () => {
  beforeAll(async () => {
    cluster = await startCitusCluster();
    await cluster.coordinator.query(`
      SET citus.shard_count = 8;
      CREATE TABLE orders (id bigint PRIMARY KEY, k int NOT NULL, note text, old_note text);
      SELECT create_distributed_table('orders', 'id');
      INSERT INTO orders SELECT g, g % 100, 'n' || g, 'o' || g FROM generate_series(1, 5000) g;
      CREATE TABLE items (order_id bigint REFERENCES orders (id) ON DELETE CASCADE, line int, qty int, PRIMARY KEY (order_id, line));
      SELECT create_distributed_table('items', 'order_id', colocate_with => 'orders');
      INSERT INTO items SELECT g, 1, g FROM generate_series(1, 500) g;
      CREATE TABLE countries (code text PRIMARY KEY, name text);
      SELECT create_reference_table('countries');
      CREATE TABLE notes (id int PRIMARY KEY, body text);
      SELECT citus_add_local_table_to_metadata('notes');
      CREATE TABLE plain_local (id int PRIMARY KEY, v int);
      INSERT INTO plain_local SELECT g, g FROM generate_series(1, 1000) g;
      ANALYZE orders;`);
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  // Shapes and commands not supported yet, each refused before anything is made: migrate, plan,
  // backfill and verify take a hash-distributed table (citus-migrate.test.ts, citus-toolkit.test.ts)
  // and a reference table (citus-reference.test.ts); contract and restore refuse every Citus table.
  const coordinatorCases: [string, string[], RegExp][] = [
    [
      'a Citus local table',
      ['migrate', '--execute', '--table', 'notes', '--alter', 'ADD COLUMN x int'],
      /public\.notes is a Citus local table.*nothing was changed/,
    ],
    ['plan of a Citus local table', ['plan', '--table', 'notes', '--alter', 'ADD COLUMN x int'], /plan cannot change a local table online yet/],
    [
      'backfill of a Citus local table',
      ['backfill', '--execute', '--table', 'notes', '--set', "body = 'x'"],
      /public\.notes is a Citus local table.*backfill cannot change a local table.*nothing was changed/,
    ],
    ['verify of a Citus local table', ['verify', '--table', 'notes', '--expect', 'body = body'], /verify cannot change a local table/],
    ['verify --against a Citus local table', ['verify', '--table', 'plain_local', '--against', 'notes'], /public\.notes is a Citus local table/],
    [
      'contract --execute',
      ['contract', '--execute', '--table', 'orders', '--drop-column', 'old_note', '--no-backup'],
      /contract cannot change a hash-distributed table/,
    ],
    ['restore --execute', ['restore', '--execute', '--table', 'orders', '--from', 'orders_old_note_backup'], /restore cannot change a hash-distributed table/],
    [
      'a set with a distributed table',
      ['migrate', '--execute', '--force-copy', '--table', 'plain_local', '--alter', 'ADD COLUMN x int', '--table', 'items', '--alter', 'ADD COLUMN x int'],
      /several tables in one cut-over are not supported yet with a Citus distributed table/,
    ],
    [
      'a change to the distribution column, as Citus refuses it',
      ['migrate', '--execute', '--table', 'orders', '--alter', 'ALTER COLUMN id TYPE numeric'],
      /changes the distribution column id of public\.orders, which Citus refuses too/,
    ],
    [
      'a unique key without the distribution column, which Citus refuses',
      ['migrate', '--execute', '--table', 'orders', '--alter', 'ADD COLUMN u int UNIQUE'],
      /Citus would not take the new table as public\.orders's co-located twin: .*Distributed relations cannot have UNIQUE/,
    ],
    [
      'trigger capture',
      ['migrate', '--execute', '--capture', 'trigger', '--table', 'orders', '--alter', 'ALTER COLUMN k TYPE bigint'],
      /--capture trigger: a Citus distributed table's changes are followed on the nodes/,
    ],
  ];

  it.each(coordinatorCases)('%s: one line, exit 2, nothing changed on any node', async (_what, args, message) => {
    const before = await clusterState();
    const r = await runCliAsync([...args, '--url', '$URL'], cluster.coordinatorUrl);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(await clusterState()).toEqual(before);
  });

  it('pointed at a worker: the shell table and a shard are refused, naming the coordinator', async () => {
    const before = await clusterState();
    const { rows } = await cluster.workers[0].query<{ shard: string }>(
      `SELECT shard_name(logicalrelid, shardid) AS shard FROM pg_dist_shard s WHERE logicalrelid = 'orders'::regclass
        AND to_regclass(shard_name(s.logicalrelid, s.shardid)) IS NOT NULL LIMIT 1`,
    );
    const shard = await runCliAsync(['migrate', '--execute', '--table', rows[0].shard, '--alter', 'ADD COLUMN x int', '--url', '$URL'], cluster.workerUrls[0]);
    expect(shard.stderr).toMatch(new RegExp(`public\\.${rows[0].shard} is a shard of the Citus table public\\.orders: .*point shadowcut at the coordinator`));
    expect(shard.code).toBe(2);
    const shell = await runCliAsync(['migrate', '--execute', '--table', 'orders', '--alter', 'ADD COLUMN x int', '--url', '$URL'], cluster.workerUrls[0]);
    expect(shell.stderr).toMatch(/hash-distributed table .*, seen from a worker: migrate cannot change/);
    expect(shell.code).toBe(2);
    expect(await clusterState()).toEqual(before);
  });

  it('plan sizes a hash-distributed table from its shards and changes nothing but its runbook (the history)', async () => {
    const before = await clusterState();
    const r = await runCliAsync(['plan', '--table', 'orders', '--alter', 'ALTER COLUMN k TYPE bigint', '--url', '$URL'], cluster.coordinatorUrl);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/size: about 5000 rows/);
    expect(r.stdout).toMatch(/changes: the change stream \(logical decoding on the 2 node\(s\) that hold its shards\)/);
    expect(await clusterState()).toEqual(before);
  });

  it('a plain table on the coordinator is migrated as on any PostgreSQL, and stays local', async () => {
    const r = await runCliAsync(
      ['migrate', '--execute', '--table', 'plain_local', '--alter', 'ALTER COLUMN v TYPE bigint', '--url', '$URL'],
      cluster.coordinatorUrl,
    );
    expect(r.stderr).toMatch(/phase done/);
    expect(r.code).toBe(0);
    const { rows } = await cluster.coordinator.query(
      `SELECT format_type(atttypid, atttypmod) AS t, (SELECT count(*) FROM plain_local) AS n,
              (SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'plain_local'::regclass) AS citus
       FROM pg_attribute WHERE attrelid = 'plain_local'::regclass AND attname = 'v'`,
    );
    expect(rows[0]).toEqual({ t: 'bigint', n: '1000', citus: '0' });
  });
});
