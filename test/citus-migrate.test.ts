// Issue 59, item 2: a hash-distributed Citus table altered online through its coordinator, under writes
// that insert, update (the key's other columns included) and delete through the coordinator, one
// transaction spanning shards on both workers among them. The oracle is a twin database of the same
// cluster that took the same writes and Citus's own ALTER TABLE: every node's definitions (shards
// included), the distribution metadata (column, co-location, shard ranges and where each one is), and
// every shard's rows on its node. A kill at each phase and a resume must end the same way.
import { chmodSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { citusUnavailable, startCitusCluster, type CitusCluster } from './support/citus.js';
import { citusTwins, type CitusTwins } from './support/citus-twins.js';
import { citusWriters, helpersLeft, type Statements } from './support/citus-writers.js';
import { cliEvents, killDuringPhase } from './support/kill.js';
import { runCliAsync } from './support/mysql.js';
import { waitUntil } from './support/wait.js';

const unavailable = citusUnavailable();
if (unavailable) console.warn(`citus-migrate.test.ts skipped: ${unavailable}`);

let cluster: CitusCluster;

const SCHEMA = `
  SET citus.shard_count = 8;
  CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
  SELECT create_reference_table('countries');
  INSERT INTO countries VALUES ('de', 'Germany'), ('fr', 'France');
  CREATE TABLE orders (id bigint PRIMARY KEY, k int NOT NULL, note text, amount numeric(12,2) NOT NULL DEFAULT 0,
    created timestamptz(6) NOT NULL DEFAULT '2026-01-01 00:00:00.123456+00', country text REFERENCES countries (code));
  SELECT create_distributed_table('orders', 'id');
  CREATE INDEX orders_k ON orders (k);
  CREATE TABLE items (order_id bigint REFERENCES orders (id) ON DELETE CASCADE, line int, qty int NOT NULL, PRIMARY KEY (order_id, line));
  SELECT create_distributed_table('items', 'order_id', colocate_with => 'orders');
  INSERT INTO orders (id, k, note, amount, country) SELECT g, g % 1000, 'n' || g, g * 0.01, CASE WHEN g % 3 = 0 THEN 'fr' ELSE 'de' END
    FROM generate_series(1, 20000) g;
  INSERT INTO items SELECT g, 1, g FROM generate_series(1, 20000, 3) g;
  GRANT SELECT ON orders TO PUBLIC;
  COMMENT ON TABLE orders IS 'the orders';`;

const ALTER = 'ALTER COLUMN k TYPE bigint, ADD COLUMN extra int NOT NULL DEFAULT 7';
const TABLES = ['orders', 'items', 'countries'];
const KEPT = ['orders__old', 'orders_pkey__old', 'orders_k__old'];

/**
 * Inserts with their items, updates, deletes that cascade to items, an item's key changed, and one
 * transaction over two orders that may sit on different workers (two-phase commit).
 */
function writers(twins: CitusTwins): ReturnType<typeof citusWriters> {
  return citusWriters(twins, (n, next): Statements => {
    const pick = 1 + (n % 20000);
    switch (n % 5) {
      case 0: {
        const id = next();
        return [
          ['INSERT INTO orders (id, k, note, country) VALUES ($1, $2, $3, $4)', [id, n % 1000, `new ${id}`, 'fr']],
          ['INSERT INTO items VALUES ($1, 1, 1), ($1, 2, 2)', [id]],
        ];
      }
      case 1:
        return [["UPDATE orders SET k = k + 1, note = note || '.' WHERE id = $1", [pick]]];
      case 2:
        return [['DELETE FROM orders WHERE id = $1', [pick]]];
      case 3:
        return [['UPDATE items SET line = line + 100 WHERE order_id = $1', [pick]]];
      default:
        return [['UPDATE orders SET amount = amount + 0.01 WHERE id IN ($1, $2)', [pick, 1 + ((pick + 7919) % 20000)]]];
    }
  });
}

describe.skipIf(unavailable !== null)('Citus: a hash-distributed table altered online, through the coordinator', () => {
  beforeAll(async () => {
    cluster = await startCitusCluster();
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it("under writes through the coordinator: the same database as Citus's own ALTER TABLE on every node, still distributed and co-located", async () => {
    const twins = await citusTwins(cluster, 'underwrites');
    await twins.setup(SCHEMA);
    const load = writers(twins);
    const run = await runCliAsync(
      ['migrate', '--execute', '--force-copy', '--table', 'orders', '--alter', ALTER, '--url', '$URL', '--chunk-time-ms', '20'],
      twins.live.coordinatorUrl,
    );
    const committed = await load.stop();
    expect(run.stderr).toMatch(/phase done/);
    expect(run.code).toBe(0);
    expect(committed).toBeGreaterThan(20);
    await twins.twin.coordinator.query(`ALTER TABLE orders ${ALTER}`);
    expect(await twins.difference(TABLES, KEPT)).toEqual([]);
    expect(await helpersLeft(twins, 'orders')).toEqual([]);
  });

  it('a role with CREATE on public defines format(text, numeric) and concat(bigint): no worker ever runs them, for migrate, backfill and verify', async () => {
    // Issue 68, item 1: Citus sends the checksum's and the compared keys' SQL to the workers as text
    // with pg_catalog's names unqualified, where each worker's own search_path ("$user", public) would
    // pick these exact-typed functions over pg_catalog's VARIADIC "any" ones, and run them as the
    // migrating superuser. Each call writes a file on the node that ran it.
    const calls = mkdtempSync(path.join(os.tmpdir(), 'citus-path-'));
    chmodSync(calls, 0o777);
    await cluster.coordinator.query('CREATE ROLE path_intruder LOGIN');
    const twins = await citusTwins(cluster, 'intruder');
    await twins.setup(`${SCHEMA};\n GRANT CREATE ON SCHEMA public TO path_intruder`);
    for (const db of [twins.live.coordinator, twins.twin.coordinator]) {
      const intruder = await db.connect();
      try {
        await intruder.query('SET ROLE path_intruder');
        for (const [fn, arg] of [
          ['format(text, numeric)', '$2'],
          ['concat(bigint)', '$1'],
        ]) {
          const file = `'${calls}/' || pg_catalog.inet_server_port() || '-${fn.replace(/\W.*/, '')}-' || pg_catalog.random()`;
          await intruder.query(
            `CREATE FUNCTION public.${fn} RETURNS text LANGUAGE plpgsql AS $f$ BEGIN EXECUTE pg_catalog.format('COPY (SELECT 1) TO %L', ${file}); RETURN ${arg}::text; END $f$`,
          );
        }
      } finally {
        await intruder.query('RESET ROLE');
        intruder.release();
      }
    }
    const load = writers(twins);
    const run = await runCliAsync(
      ['migrate', '--execute', '--force-copy', '--table', 'orders', '--alter', ALTER, '--url', '$URL', '--chunk-time-ms', '20'],
      twins.live.coordinatorUrl,
    );
    await load.stop();
    expect(run.code, run.stderr).toBe(0);
    // Row by row under the cut-over lock: the compared keys' text (concat) went to the workers too.
    expect(run.stdout + run.stderr).toMatch(/row by row for [1-9]\d* changed row/);
    const backfill = await runCliAsync(['backfill', '--table', 'orders', '--set', 'note = note', '--url', '$URL', '--execute'], twins.live.coordinatorUrl);
    const verify = await runCliAsync(['verify', '--table', 'orders', '--expect', 'amount = amount', '--url', '$URL'], twins.live.coordinatorUrl);
    expect(readdirSync(calls)).toEqual([]);
    // Both run on the distributed table through the coordinator (issue 71), their reads and batches too.
    expect([backfill.code, verify.code], backfill.stderr + verify.stderr).toEqual([0, 0]);
    await twins.twin.coordinator.query(`ALTER TABLE orders ${ALTER}`);
    expect(await twins.difference(TABLES, KEPT)).toEqual([]);
  });

  it.each(['copy', 'verify', 'cutover'])('killed in its %s phase and resumed: the same end, nothing left on any node', async (phase) => {
    const twins = await citusTwins(cluster, `kill_${phase}`);
    await twins.setup(SCHEMA);
    const load = writers(twins);
    const args = ['--table', 'orders', '--alter', ALTER, '--url', twins.live.coordinatorUrl, '--chunk-time-ms', '20', '--max-rows-per-sec', '20000'];
    const killed = await killDuringPhase(args, phase);
    expect(killed.killed, killed.stderr).toBe(true);
    const resumed = await runCliAsync(['migrate', '--execute', '--force-copy', '--resume', ...args.slice(0, 6), '--url', '$URL'], twins.live.coordinatorUrl);
    await load.stop();
    // Killed after its swap committed, the resume finds the work done.
    expect(resumed.code, resumed.stderr).toBe(0);
    await twins.twin.coordinator.query(`ALTER TABLE orders ${ALTER}`);
    expect(await twins.difference(TABLES, KEPT)).toEqual([]);
    expect(await helpersLeft(twins, 'orders')).toEqual([]);
  });

  it('cleanup after a kill removes every helper on every node, and the table is as it was', async () => {
    const twins = await citusTwins(cluster, 'cleanup');
    await twins.setup(SCHEMA);
    const killed = await killDuringPhase(
      ['--table', 'orders', '--alter', ALTER, '--url', twins.live.coordinatorUrl, '--max-rows-per-sec', '5000'],
      'copy',
      200,
    );
    expect(killed.killed, killed.stderr).toBe(true);
    const cleanup = await runCliAsync(['cleanup', '--table', 'orders', '--url', '$URL'], twins.live.coordinatorUrl);
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect(await helpersLeft(twins, 'orders')).toEqual([]);
    expect(await twins.difference(TABLES, [])).toEqual([]);
  });

  // docs/crash-and-resume.md's fault matrix on Citus. The writers pause around the restart: a
  // transaction whose COMMIT the worker's crash cut could be on one twin and not the other.
  it.each(['copy', 'postponed', 'cutover'] as const)('a worker restarted in the %s: the same database as the native ALTER, nothing left', async (phase) => {
    const twins = await citusTwins(cluster, `restart_${phase}`);
    await twins.setup(SCHEMA);
    const load = writers(twins);
    const faults: Promise<void>[] = [];
    const paced = phase === 'copy' ? ['--max-rows-per-sec', '5000'] : phase === 'postponed' ? ['--postpone-cutover'] : [];
    const args = ['migrate', '--json', '--execute', '--force-copy', '--table', 'orders', '--alter', ALTER, '--url', twins.live.coordinatorUrl, ...paced];
    const run = await cliEvents(args, (event) => {
      if (faults.length || event.event !== 'phase' || event.phase !== phase) return;
      faults.push(
        (async () => {
          await load.pause();
          await cluster.restart(1);
          load.resume();
          if (phase === 'postponed') {
            await waitUntil('the cut-over taken', async () => (await runCliAsync(['cutover', '--table', 'orders'], '')).code === 0);
          }
        })(),
      );
    });
    await Promise.all(faults);
    expect(faults, run.stderr).toHaveLength(1);
    // In the swap itself the run may stop, in one line, for its --resume to finish (the fault matrix's rule).
    let ended: { code: number | null; stderr: string } = { code: run.exitCode, stderr: run.stderr };
    if (phase === 'cutover' && ended.code !== 0) {
      expect(run.stderr.trim().split('\n').at(-1), run.stderr).toMatch(/^shadowcut: /);
      ended = await runCliAsync(
        ['migrate', '--execute', '--force-copy', '--resume', '--table', 'orders', '--alter', ALTER, '--url', '$URL'],
        twins.live.coordinatorUrl,
      );
    }
    const committed = await load.stop();
    expect(ended.code, `${run.stderr}\nthen: ${ended.stderr}`).toBe(0);
    expect(committed).toBeGreaterThan(20);
    await twins.twin.coordinator.query(`ALTER TABLE orders ${ALTER}`);
    expect(await twins.difference(TABLES, KEPT)).toEqual([]);
    expect(await helpersLeft(twins, 'orders')).toEqual([]);
  });

  it('a table keyed by a few tenants (a composite key, most shards empty) under writes: the same as the native ALTER', async () => {
    // The copy's boundaries come from the nodes (citus/boundary.ts): keys spread unevenly over the
    // shards and nodes, a composite key ordered across nodes by the server, small chunks at first.
    const twins = await citusTwins(cluster, 'tenants');
    await twins.setup(`
      SET citus.shard_count = 8;
      CREATE TABLE events (tenant int, id int, body text, at timestamptz(6) NOT NULL DEFAULT '2026-01-01 00:00:00.5+00', PRIMARY KEY (tenant, id));
      SELECT create_distributed_table('events', 'tenant');
      INSERT INTO events (tenant, id, body) SELECT t, g, md5(g::text) FROM generate_series(1, 3) t, generate_series(1, 4000 * t) g;
      ANALYZE events`);
    let stopped = false;
    const writes = (async () => {
      for (let n = 0; !stopped; n++) {
        const [tenant, id] = [1 + (n % 3), 1 + ((n * 7919) % 12000)];
        for (const db of [twins.live.coordinator, twins.twin.coordinator]) {
          await db.query('DELETE FROM events WHERE tenant = $1 AND id = $2', [tenant, id]);
          await db.query("INSERT INTO events (tenant, id, body) VALUES ($1, $2, 'again') ON CONFLICT DO NOTHING", [tenant, id + 20000]);
        }
      }
    })();
    const alter = 'ALTER COLUMN body TYPE varchar(40), ADD COLUMN seen int';
    const run = await runCliAsync(
      ['migrate', '--execute', '--force-copy', '--table', 'events', '--alter', alter, '--url', '$URL', '--chunk-time-ms', '20'],
      twins.live.coordinatorUrl,
    );
    stopped = true;
    await writes;
    expect(run.code, run.stderr).toBe(0);
    await twins.twin.coordinator.query(`ALTER TABLE events ${alter}`);
    expect(await twins.difference(['events'], ['events__old', 'events_pkey__old'])).toEqual([]);
  });

  it('the primary key replaced by its columns in another order (issue 71): the shadow keyed by an index of its own, the same as the native ALTER', async () => {
    const twins = await citusTwins(cluster, 'rekeyed');
    await twins.setup(`
      SET citus.shard_count = 4;
      CREATE TABLE accounts (tenant int, id int, body text, PRIMARY KEY (tenant, id));
      SELECT create_distributed_table('accounts', 'tenant');
      INSERT INTO accounts SELECT t, g, md5(g::text) FROM generate_series(1, 4) t, generate_series(1, 1500) g`);
    const alter = 'DROP CONSTRAINT accounts_pkey, ADD PRIMARY KEY (id, tenant)';
    const run = await runCliAsync(
      ['migrate', '--execute', '--force-copy', '--table', 'accounts', '--alter', alter, '--url', '$URL'],
      twins.live.coordinatorUrl,
    );
    expect(run.code, run.stderr).toBe(0);
    // The live table's changes go through the shadow's own key until the cut-over drops it.
    await twins.live.coordinator.query("UPDATE accounts SET body = 'after' WHERE id = 7");
    // Citus's own ALTER takes ADD CONSTRAINT alone in its statement: the same change in two.
    await twins.twin.coordinator.query('ALTER TABLE accounts DROP CONSTRAINT accounts_pkey; ALTER TABLE accounts ADD PRIMARY KEY (id, tenant)');
    await twins.twin.coordinator.query("UPDATE accounts SET body = 'after' WHERE id = 7");
    expect(await twins.difference(['accounts'], ['accounts__old', 'accounts_pkey__old'])).toEqual([]);
    expect(await helpersLeft(twins, 'accounts')).toEqual([]);
  });

  it("holds the copy back while a worker's standby stops replaying, with no --replica given, then ends exact", async () => {
    const twins = await citusTwins(cluster, 'standby_lag');
    await twins.setup(SCHEMA);
    const standby = await cluster.standby(0);
    await standby.query('SELECT pg_wal_replay_pause()');
    let held: string | null = null;
    const { exitCode, stderr } = await cliEvents(
      [
        'migrate',
        '--json',
        '--execute',
        '--force-copy',
        '--table',
        'orders',
        '--alter',
        ALTER,
        '--url',
        twins.live.coordinatorUrl,
        '--max-lag-ms',
        '200',
        '--max-rows-per-sec',
        '4000',
      ],
      (event) => {
        // Once the worker's standby is seen behind, it may replay again: the run must then go on.
        if (held === null && event.event === 'progress' && typeof event.throttle === 'string' && /^replica lag/.test(event.throttle)) {
          held = event.throttle;
          void standby.query('SELECT pg_wal_replay_resume()');
        }
      },
    );
    await standby.query('SELECT pg_wal_replay_resume()');
    expect(exitCode, stderr).toBe(0);
    expect(held).toMatch(/^replica lag \d+ ms > 200 ms$/);
    await twins.twin.coordinator.query(`ALTER TABLE orders ${ALTER}`);
    expect(await twins.difference(TABLES, KEPT)).toEqual([]);
  });
});
