// Issue 59, item 2: the revert window over a hash-distributed Citus table. After the cut-over the old
// table follows the new one on every node (streams of the way back's own, made before the swap), and
// `shadowcut revert` swaps every shard back in one distributed transaction. Writes go through the
// coordinator all along, during the window too; the oracle is a twin that took the same writes and
// no ALTER: every shard's rows, every node's definitions, the distribution metadata, the co-located
// child's key and the key to the reference table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { citusUnavailable, startCitusCluster, type CitusCluster } from './support/citus.js';
import { citusTwins, type CitusTwins } from './support/citus-twins.js';
import { citusWriters, helpersLeft, revertAfterWindow, type Statements } from './support/citus-writers.js';
import { killDuringPhase } from './support/kill.js';
import { runCliAsync } from './support/mysql.js';

const unavailable = citusUnavailable();
if (unavailable) console.warn(`citus-revert.test.ts skipped: ${unavailable}`);

let cluster: CitusCluster;

const SCHEMA = `
  SET citus.shard_count = 8;
  CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
  SELECT create_reference_table('countries');
  INSERT INTO countries VALUES ('de', 'Germany'), ('fr', 'France');
  CREATE TABLE orders (id bigint PRIMARY KEY, k int NOT NULL, note text, amount numeric(12,2) NOT NULL DEFAULT 0, country text REFERENCES countries (code));
  SELECT create_distributed_table('orders', 'id');
  CREATE INDEX orders_k ON orders (k);
  CREATE TABLE items (order_id bigint REFERENCES orders (id) ON DELETE CASCADE, line int, qty int NOT NULL, PRIMARY KEY (order_id, line));
  SELECT create_distributed_table('items', 'order_id', colocate_with => 'orders');
  INSERT INTO orders (id, k, note, amount, country) SELECT g, g % 1000, 'n' || g, g * 0.01, CASE WHEN g % 3 = 0 THEN 'fr' ELSE 'de' END
    FROM generate_series(1, 10000) g;
  INSERT INTO items SELECT g, 1, g FROM generate_series(1, 10000, 3) g;
  GRANT SELECT ON orders TO PUBLIC`;

const ALTER = 'ALTER COLUMN k TYPE bigint, ADD COLUMN extra int NOT NULL DEFAULT 7';
const TABLES = ['orders', 'items', 'countries'];
/** The new table a revert keeps, with its indexes, left out of the comparison. */
const KEPT = ['orders__new', 'orders__new_pkey', 'orders__new_k_idx'];
const KEPT_HELPER = /^table orders__new(_pkey|_k_idx)?(_\d+)?$/;

/** Inserts with their items, updates, deletes that cascade, and one transaction over two orders that may sit on different workers. */
function writers(twins: CitusTwins): { stop: () => Promise<number> } {
  return citusWriters(twins, (n, next): Statements => {
    const pick = 1 + (n % 10000);
    switch (n % 4) {
      case 0: {
        const id = next();
        return [
          ['INSERT INTO orders (id, k, note, country) VALUES ($1, $2, $3, $4)', [id, n % 1000, `new ${id}`, 'fr']],
          ['INSERT INTO items VALUES ($1, 1, 1)', [id]],
        ];
      }
      case 1:
        return [["UPDATE orders SET k = k + 1, note = note || '.' WHERE id = $1", [pick]]];
      case 2:
        return [['DELETE FROM orders WHERE id = $1', [pick]]];
      default:
        return [['UPDATE orders SET amount = amount + 0.01 WHERE id IN ($1, $2)', [pick, 1 + ((pick + 7919) % 10000)]]];
    }
  });
}

/**
 * Where in the window a run is killed: once it has opened, and where a slow machine's kill once came,
 * after the way back's streams were opened on the nodes and before its first checkpoint (a seam), so
 * that a resume finds only the forward run's checkpoint, cut over.
 */
const WINDOW_KILLS = ['300 ms after it opened', 'before its first checkpoint'] as const;

async function killInWindow(args: string[], url: string, when: (typeof WINDOW_KILLS)[number]): Promise<void> {
  if (when === WINDOW_KILLS[0]) {
    const killed = await killDuringPhase([...args, '--url', url], 'revert window', 300);
    expect(killed.killed, killed.stderr).toBe(true);
    return;
  }
  const killed = await runCliAsync(['migrate', '--execute', '--force-copy', ...args, '--url', '$URL'], url, {
    SHADOWCUT_TEST_KILL_AT: 'window-before-checkpoint',
  });
  expect(killed.code, killed.stderr).toBeNull(); // SIGKILL at the seam
}

describe.skipIf(unavailable !== null)('Citus: the revert window over a distributed table', () => {
  beforeAll(async () => {
    cluster = await startCitusCluster();
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('writes through the coordinator after the cut-over follow back: reverted, the table equals a twin that never took the ALTER', async () => {
    const twins = await citusTwins(cluster, 'revert');
    await twins.setup(SCHEMA);
    const load = writers(twins);
    const run = runCliAsync(
      ['migrate', '--execute', '--force-copy', '--revert-window', '10m', '--table', 'orders', '--alter', ALTER, '--url', '$URL', '--chunk-time-ms', '20'],
      twins.live.coordinatorUrl,
    );
    const done = await revertAfterWindow('public.orders', run, 50);
    const committed = await load.stop();
    expect(done.stderr).toMatch(/reverted: public\.orders has its old schema again/);
    expect(done.code, done.stderr).toBe(0);
    expect(committed).toBeGreaterThan(50);
    expect(await twins.difference(TABLES, KEPT)).toEqual([]);
    // The new table is kept beside it (and its shards), nothing else of the run on any node.
    expect((await helpersLeft(twins, 'orders')).filter((h) => !KEPT_HELPER.test(h))).toEqual([]);
  });

  it.each(WINDOW_KILLS)('killed in its window (%s), resumed and reverted: no write made after the cut-over is lost', async (when) => {
    const twins = await citusTwins(cluster, `revert_kill_${WINDOW_KILLS.indexOf(when)}`);
    await twins.setup(SCHEMA);
    const load = writers(twins);
    const args = ['--revert-window', '10m', '--table', 'orders', '--alter', ALTER, '--chunk-time-ms', '20'];
    await killInWindow(args, twins.live.coordinatorUrl, when);
    const run = runCliAsync(['migrate', '--execute', '--force-copy', '--resume', ...args, '--url', '$URL'], twins.live.coordinatorUrl);
    const done = await revertAfterWindow('public.orders', run, 50);
    const committed = await load.stop();
    expect(done.stderr).toMatch(/reverted: public\.orders has its old schema again/);
    expect(done.code, done.stderr).toBe(0);
    expect(committed).toBeGreaterThan(50);
    expect(await twins.difference(TABLES, KEPT)).toEqual([]);
    expect((await helpersLeft(twins, 'orders')).filter((h) => !KEPT_HELPER.test(h))).toEqual([]);
  });

  it.each(WINDOW_KILLS)("killed in its window (%s), then cleanup: the way back's streams are gone from every node, the new table stays", async (when) => {
    const twins = await citusTwins(cluster, `revert_cleanup_${WINDOW_KILLS.indexOf(when)}`);
    await twins.setup(SCHEMA);
    await killInWindow(['--revert-window', '10m', '--table', 'orders', '--alter', ALTER], twins.live.coordinatorUrl, when);
    const cleanup = await runCliAsync(['cleanup', '--table', 'orders', '--url', '$URL'], twins.live.coordinatorUrl);
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect((await helpersLeft(twins, 'orders')).filter((h) => !h.startsWith('table '))).toEqual([]);
    await twins.twin.coordinator.query(`ALTER TABLE orders ${ALTER}`);
    expect(await twins.difference(TABLES, ['orders__old', 'orders_pkey__old', 'orders_k__old'])).toEqual([]);
  });
});
