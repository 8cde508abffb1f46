import type pg from 'pg';
import type { CitusTwins } from './citus-twins.js';
import { runCliAsync } from './mysql.js';
import { waitUntil } from './wait.js';

/** One application transaction: its statements, in order. */
export type Statements = [string, unknown[]][];

/**
 * Two writers through each coordinator, every transaction committed on the migrated database and
 * then on the twin, until stopped. `transaction(n, next)` draws the n-th one (`next()` a fresh key).
 */
export function citusWriters(
  twins: CitusTwins,
  transaction: (n: number, next: () => number) => Statements,
): { stop: () => Promise<number>; pause: () => Promise<void>; resume: () => void } {
  let stopped = false;
  let fresh = 1_000_000;
  let committed = 0;
  // Paused, each writer ends its transaction and waits: a server can then be restarted under no write in flight.
  let paused: { resumed: Promise<void>; resume: () => void; idle: number } | null = null;
  const loop = async (seed: number) => {
    for (let n = seed; !stopped;) {
      if (paused) {
        paused.idle++;
        await paused.resumed;
        continue;
      }
      n = (n * 1103515245 + 12345) % 2147483648;
      const statements = transaction(n, () => fresh++);
      for (const db of [twins.live.coordinator, twins.twin.coordinator]) await inTransaction(db, statements);
      committed++;
    }
  };
  const running = Promise.all([loop(7), loop(11)]).then(
    () => null,
    (error: unknown) => ((stopped = true), error),
  );
  return {
    stop: async () => {
      stopped = true;
      paused?.resume();
      const failed = await running;
      if (failed) throw failed;
      return committed;
    },
    async pause() {
      let resume = () => {};
      const resumed = new Promise<void>((r) => (resume = r));
      const state = { resumed, resume, idle: 0 };
      paused = state;
      await waitUntil('the writers paused', () => state.idle >= 2 || stopped);
    },
    resume() {
      const state = paused;
      paused = null;
      state?.resume();
    },
  };
}

export async function inTransaction(db: pg.Pool, statements: Statements): Promise<void> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    for (const [sql, values] of statements) await client.query(sql, values);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Nothing of the run on any node: no slot, publication, shadow or helper table of `table`. */
export async function helpersLeft(twins: CitusTwins, table: string): Promise<string[]> {
  const left: string[] = [];
  for (const db of [twins.live.coordinator, ...twins.live.workers]) {
    const { rows } = await db.query<{ x: string }>(
      `SELECT 'slot ' || slot_name AS x FROM pg_replication_slots UNION ALL SELECT 'publication ' || pubname FROM pg_publication
       UNION ALL SELECT 'table ' || relname FROM pg_class WHERE relname ~ ('^' || $1 || '__(new|state|hb|log)')`,
      [table],
    );
    left.push(...rows.map((r) => r.x));
  }
  return left;
}

interface RunStatus {
  state: string;
  phase: string;
  capture: string | null;
  changesApplied: number;
}

/** The running migration's status (`shadowcut status --json`), or null while none answers. */
async function status(table: string): Promise<RunStatus | null> {
  const r = await runCliAsync(['status', '--table', table, '--json'], '');
  return r.code === 0 ? (JSON.parse(r.stdout) as { status: RunStatus }).status : null;
}

/**
 * A `migrate --revert-window` run under way: waits until its window is open (followed on the nodes' streams) and the old table has
 * followed more than `changes` changes back from the new one, then asks for the revert and returns
 * the run's end.
 */
export async function revertAfterWindow(
  table: string,
  run: Promise<{ code: number | null; stdout: string; stderr: string }>,
  changes: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let settled = false;
  void run.then(() => (settled = true));
  let at = -1;
  await waitUntil(
    'the revert window',
    async () => {
      if (settled) throw new Error(`migrate ended before its window: ${(await run).stderr}`);
      const s = await status(table);
      if (s?.state === 'revert-window' && s.phase === 'revert window') {
        // A Citus table's way back is followed on its nodes' streams, and says so.
        if (s.capture !== 'stream') throw new Error(`the window says it follows by ${s.capture}`);
        at = s.changesApplied;
      }
      return at >= 0;
    },
    300_000,
  );
  // The new table takes writes, which the old one follows back, before the revert is asked for.
  await waitUntil('writes followed back', async () => ((await status(table))?.changesApplied ?? 0) > at + changes, 120_000);
  const revert = await runCliAsync(['revert', '--table', table], '');
  if (revert.code !== 0) throw new Error(`revert failed: ${revert.stderr}`);
  return run;
}
