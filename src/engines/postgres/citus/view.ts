import type pg from 'pg';
import { LockTimeoutError, ROLLBACK_AFTER_FAILURE, UserError, ignoreFailure } from '../../../core/engine/errors.js';
import type { CatchUp, ConsistentView, Key } from '../../../core/engine/types.js';
import { sleep } from '../../../core/engine/retry/backoff.js';
import { keyText } from '../copy/as-text.js';
import { digest, EXACT_TEXT, onSides, planSides, rowText, type RowSide } from '../copy/checksum.js';
import type { Copier } from '../copy/copy.js';
import { asLockTimeout } from '../server/errors.js';
import { ident } from '../server/sql.js';
import { PgSession, type Client } from '../server/connect.js';
import type { CitusNode } from '../schema/plan.js';
import type { CitusNodes } from './nodes.js';

/**
 * Both tables as of one instant, across every node. Citus gives no snapshot that spans nodes, so the
 * instant is made by holding writers off: SHARE on the table through the coordinator (Citus takes it
 * on every node's copy of the table too), the shadow caught up meanwhile, and then one REPEATABLE
 * READ transaction that touches every shard of both tables on one connection per node, which fixes
 * each node's snapshot while nothing can change. Every later statement of that transaction reads the
 * same snapshots (`max_adaptive_executor_pool_size = 1` keeps it to the connections it opened).
 * The digests are sums, which Citus computes on each shard and adds up: no row leaves its node.
 */
export async function openCitusView(
  pool: pg.Pool,
  copier: Copier,
  catchUp: CatchUp,
  lockTimeoutMs: number,
  boundary: ConsistentView['nextBoundary'],
): Promise<ConsistentView> {
  const lock = await pool.connect();
  const view = await pool.connect();
  try {
    await lock.query('BEGIN');
    await lock.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    await lock.query(`LOCK TABLE ${copier.original} IN SHARE MODE`);
    await catchUp(new PgSession(view, false));
    await view.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await view.query('SET LOCAL citus.max_adaptive_executor_pool_size = 1');
    await view.query(EXACT_TEXT);
    for (const table of [copier.original, copier.shadow]) await view.query(`SELECT count(*) FROM ${table} WHERE ctid = '(0,0)'::tid`);
    await lock.query('COMMIT');
  } catch (error) {
    await lock.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
    lock.release(error as Error);
    await view.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
    view.release(error as Error);
    throw asLockTimeout(error, 'checksum lock');
  }
  lock.release();
  const sides = planSides(copier);
  return {
    // Read live on the nodes, not in the view's snapshots: a boundary only splits the keys into
    // ranges, which both sides are then summed over in the snapshots.
    nextBoundary: boundary,
    // One after the other on the view's connections: each is spread over the nodes already.
    checksum: async (range) => [await digest(view, sides[0], range), await digest(view, sides[1], range)],
    compareKeys: (keys) => citusDifferingKeys(view, sides, keys),
    async close() {
      const failure = await view.query('COMMIT').then(
        () => undefined,
        (error: Error) => error,
      );
      view.release(failure);
    },
  };
}

const KEYS_PER_READ = 1000;

/**
 * The keys among `keys` whose rows differ. A join of the two tables by the key's text is no join
 * Citus can run on the nodes (it joins co-located tables by their distribution column only), so each
 * side's rows for the keys are read on their own, by key, and compared here: the text of a row is
 * what the checksum hashes, exactly.
 */
export async function citusDifferingKeys(client: Client, sides: [RowSide, RowSide], keys: Key[]): Promise<Key[]> {
  const found: Key[] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_READ) {
    const batch = keys.slice(i, i + KEYS_PER_READ);
    const [a, b] = [await rowsOf(client, sides[0], batch), await rowsOf(client, sides[1], batch)];
    for (const [id, row] of a) if (b.get(id)?.row !== row.row) found.push(row.key);
    for (const [id, row] of b) if (!a.has(id)) found.push(row.key);
  }
  return found;
}

async function rowsOf(client: Client, side: RowSide, keys: Key[]): Promise<Map<string, { key: Key; row: string }>> {
  const where = side.keys.keyIn(keys);
  const keyColumns = side.keyColumns.map((k) => keyText(ident(k))).join(', ');
  const { rows } = await onSides(client, [side], () =>
    client.query({
      text: `SELECT ${rowText(side)} AS r, ${keyColumns} FROM ${side.table} WHERE ${where.sql}${side.where ? ` AND (${side.where})` : ''}`,
      values: where.params,
      rowMode: 'array',
    }),
  );
  const found = new Map<string, { key: Key; row: string }>();
  for (const row of rows as (string | null)[][]) {
    const key = row.slice(1);
    found.set(JSON.stringify(key), { key, row: String(row[0]) });
  }
  return found;
}

/**
 * A write through the coordinator that reached several nodes commits there in two phases: prepared
 * on each node, then committed on the coordinator (its lock on the table released), and only then
 * committed on each node. Under the cut-over's lock such a write may still be prepared on a node,
 * its change not yet in that node's stream: the swap waits until no prepared transaction holds a
 * lock on the table's shards anywhere, within the lock's budget.
 */
export async function preparedCommitted(nodes: CitusNodes, shardsOf: CitusNode[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const node of shardsOf) {
    const { pool } = await nodes.node(node);
    for (;;) {
      const { rows } = await pool.query(
        `SELECT count(*)::int AS n FROM pg_catalog.pg_locks l WHERE l.pid IS NULL AND l.locktype = 'relation'
            AND l.relation IN (SELECT to_regclass(s) FROM unnest($1::text[]) s)`,
        [node.shards],
      );
      if (Number(rows[0].n) === 0) break;
      if (Date.now() > deadline) throw new LockTimeoutError(`a prepared transaction on the Citus node of group ${node.group} still holds the table's shards`);
      await sleep(5);
    }
  }
}

/**
 * A reference table's write is made on every placement in two phases: prepared on each, committed
 * on the coordinator, then committed on each. The followed placement may show it committed while
 * another still holds it prepared; a chunk or an apply, which Citus runs on every placement against
 * that placement's own rows, would then read the row as it was there, and that placement's new table
 * would keep the old row for good. So before an apply reads the table, every prepared transaction
 * that held the shard on any node when asked has to be gone: each write the stream has delivered was
 * prepared everywhere before it showed, so it is committed everywhere then. Later writes are not
 * waited for (their keys come later). A prepared transaction left by a coordinator that died is
 * resolved by Citus's own recovery within `citus.recover_2pc_interval`; past `timeoutMs` the run stops.
 */
export async function replicasSettled(nodes: CitusNodes, holders: CitusNode[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = await Promise.all(
    holders.map(async (node) => {
      const { pool } = await nodes.node(node);
      return { node, pool, held: await preparedOn(pool, node.shards) };
    }),
  );
  for (const { node, pool, held } of pending) {
    for (let left = held; left.length; left = (await preparedOn(pool, node.shards)).filter((t) => left.includes(t))) {
      if (Date.now() > deadline) {
        throw new UserError(
          `a prepared transaction on the Citus node ${node.host}:${node.port} (group ${node.group}) has held the reference table's shard for ${Math.round(timeoutMs / 1000)} s; stopped safely (Citus's 2PC recovery or COMMIT/ROLLBACK PREPARED resolves it), then --resume`,
        );
      }
      await sleep(5);
    }
  }
}

/** The prepared transactions (`-1/xid`) that hold a lock on any of the shards. */
async function preparedOn(pool: pg.Pool, shards: string[]): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT DISTINCT l.virtualtransaction AS t FROM pg_catalog.pg_locks l WHERE l.pid IS NULL AND l.locktype = 'relation'
        AND l.relation IN (SELECT to_regclass(s) FROM unnest($1::text[]) s)`,
    [shards],
  );
  return rows.map((r: { t: string }) => r.t);
}
