// The application: a few connections writing single rows at a fixed total rate (INSERT, UPDATE by
// random id, DELETE by random id), each op timed with process.hrtime. Paced rather than flat out, so
// the load is the same for every tool and latency reflects the migration, not a saturated server.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { randInt, type Workload } from './workloads.js';

export interface LoadOptions {
  connections: number;
  /** Target writes per second, all connections together. */
  rate: number;
  /** Hard bound: the load stops by itself after this long even if nobody stops it. */
  maxSeconds: number;
  /** Highest id in the seeded table; updates and deletes pick ids up to the highest seen so far. */
  maxId: number;
}

type Op = 'insert' | 'update' | 'delete';

export interface SlowOp {
  /** Seconds after the load started that the op began. */
  atS: number;
  ms: number;
  op: Op;
  error?: string;
}

export interface LoadStats {
  seconds: number;
  /** The writes the load meant to make in that time (its rate times its seconds). */
  offered: number;
  ops: number;
  errors: number;
  errorCodes: Record<string, number>;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** The same split by kind of write: lock waits hit UPDATE/DELETE of existing rows, CPU starvation all. */
  byOp: Record<Op, { ops: number; p50Ms: number; p99Ms: number; maxMs: number }>;
  /**
   * How late this process's own 10 ms timer fired (p99/max, ms): if these are as large as the write
   * stalls, the stall was the load generator starved of CPU, not the database.
   */
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  /** The slowest ops, slowest first, to line them up with the tool's phases. */
  slowest: SlowOp[];
  /** Each second of the load (by when its ops began): what the bench page draws. */
  perSecond: { s: number; ops: number; p50Ms: number; p99Ms: number; maxMs: number }[];
}

interface Writer {
  insert(): Promise<number | undefined>;
  update(id: number): Promise<void>;
  delete(id: number): Promise<void>;
  close(): Promise<void>;
}

/** The workload's three statements, with ? placeholders (mysql2) or $n (pg). */
function statements(w: Workload, dollar: boolean) {
  const ph = (sql: string) => {
    let n = 0;
    return dollar ? sql.replace(/\?/g, () => `$${++n}`) : sql;
  };
  return {
    insert: ph(`INSERT INTO ${w.table} (${w.insert.columns.join(', ')}) VALUES (${w.insert.columns.map(() => '?').join(', ')})`),
    update: ph(`UPDATE ${w.table} SET ${w.update.set} WHERE id = ?`),
    del: ph(`DELETE FROM ${w.table} WHERE id = ?`),
  };
}

// Plain (client-side interpolated) queries, no server-side prepared statements: a statement
// prepared against the original table must not be what breaks at the cut-over.
async function mysqlWriter(url: string, w: Workload, connections: number): Promise<Writer> {
  const pool = mysql.createPool({ uri: url, connectionLimit: connections, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
  await Promise.all(Array.from({ length: connections }, () => pool.query('SELECT 1')));
  const sql = statements(w, false);
  return {
    async insert() {
      const [r] = await pool.query(sql.insert, w.insert.values());
      return Number((r as mysql.ResultSetHeader).insertId);
    },
    async update(id) {
      await pool.query(sql.update, [...w.update.values(), id]);
    },
    async delete(id) {
      await pool.query(sql.del, [id]);
    },
    close: () => pool.end(),
  };
}

async function pgWriter(url: string, w: Workload, connections: number): Promise<Writer> {
  const pool = new pg.Pool({ connectionString: url, max: connections });
  pool.on('error', () => {}); // an idle client dropped by the server is replaced on next use
  await Promise.all(Array.from({ length: connections }, () => pool.query('SELECT 1')));
  const sql = statements(w, true);
  return {
    async insert() {
      const r = await pool.query<{ id: string }>(`${sql.insert} RETURNING id::text AS id`, w.insert.values());
      return Number(r.rows[0]?.id);
    },
    async update(id) {
      await pool.query(sql.update, [...w.update.values(), id]);
    },
    async delete(id) {
      await pool.query(sql.del, [id]);
    },
    close: () => pool.end(),
  };
}

export interface RunningLoad {
  /** Stops issuing ops, waits for those in flight, closes the connections and returns the numbers. */
  stop(): Promise<LoadStats>;
}

/**
 * Connects (so connecting is not timed), then starts writing at once. With several URLs (a Galera
 * cluster's nodes) the connections are dealt out among them in turn.
 */
export async function startLoad(engine: 'mysql' | 'postgres', urls: string[], w: Workload, opts: LoadOptions): Promise<RunningLoad> {
  const share = (i: number) => Math.ceil((opts.connections - i) / urls.length);
  const writers = await Promise.all(urls.map((url, i) => (engine === 'mysql' ? mysqlWriter(url, w, share(i)) : pgWriter(url, w, share(i)))));
  const latencies: number[] = [];
  const opOf: Op[] = [];
  const startedAt: number[] = [];
  const slow: SlowOp[] = [];
  const errorCodes: Record<string, number> = {};
  let errors = 0;
  let maxId = opts.maxId;
  let stopped = false;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const started = process.hrtime.bigint();
  const deadline = Date.now() + opts.maxSeconds * 1000;
  const interval = (1000 * opts.connections) / opts.rate; // ms between ops on one connection

  const record = (s: SlowOp) => {
    latencies.push(s.ms);
    opOf.push(s.op);
    startedAt.push(s.atS);
    if (slow.length < 10 || s.ms > slow[slow.length - 1].ms) {
      slow.push(s);
      slow.sort((a, b) => b.ms - a.ms);
      if (slow.length > 10) slow.pop();
    }
  };

  const worker = async (index: number) => {
    const writer = writers[index % writers.length];
    // Stagger the connections across one interval so they do not fire in lockstep.
    let next = Date.now() + (interval * index) / opts.connections;
    while (!stopped && Date.now() < deadline) {
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (stopped) break;
      // After a stall, carry on at the normal pace instead of firing the missed ops in a burst.
      next = Math.max(next + interval, Date.now());
      const dice = Math.random();
      const op: Op = dice < 0.4 ? 'insert' : dice < 0.8 ? 'update' : 'delete';
      const t0 = process.hrtime.bigint();
      let error: string | undefined;
      try {
        if (op === 'insert') {
          const id = await writer.insert();
          if (id && id > maxId) maxId = id;
        } else if (op === 'update') {
          await writer.update(randInt(1, maxId));
        } else {
          await writer.delete(randInt(1, maxId));
        }
      } catch (e) {
        errors++;
        const err = e as { code?: string; message?: string };
        const code = err.code ?? 'ERROR';
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        error = `${code}: ${(err.message ?? String(e)).slice(0, 200)}`;
      }
      const t1 = process.hrtime.bigint();
      record({ atS: Number(t0 - started) / 1e9, ms: Number(t1 - t0) / 1e6, op, error });
    }
  };
  const workers = Array.from({ length: opts.connections }, (_, i) => worker(i));

  return {
    async stop() {
      stopped = true;
      await Promise.all(workers);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      loopDelay.disable();
      await Promise.all(writers.map((writer) => writer.close().catch(() => {})));
      // The histogram holds whole timer intervals; subtract the 10 ms interval to get the lateness.
      const late = (ns: number) => Math.max(0, ns / 1e6 - 10);
      const loop = { p99: late(loopDelay.percentile(99)), max: late(loopDelay.max) };
      return {
        ...summarize(latencies, opOf, seconds, errors, errorCodes, slow, loop),
        perSecond: perSecond(latencies, startedAt, seconds),
        offered: Math.round(opts.rate * seconds),
      };
    },
  };
}

function perSecond(latencies: number[], startedAt: number[], seconds: number): LoadStats['perSecond'] {
  const buckets: number[][] = Array.from({ length: Math.ceil(seconds) }, () => []);
  latencies.forEach((ms, i) => buckets[Math.min(buckets.length - 1, Math.floor(startedAt[i]))]?.push(ms));
  return buckets.map((b, s) => {
    const sorted = Array.from(Float64Array.from(b).sort());
    return { s, ops: b.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.length ? sorted[sorted.length - 1] : 0 };
  });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function summarize(
  latencies: number[],
  opOf: Op[],
  seconds: number,
  errors: number,
  errorCodes: Record<string, number>,
  slowest: SlowOp[],
  loop: { p99: number; max: number },
): Omit<LoadStats, 'offered' | 'perSecond'> {
  const arr = Array.from(Float64Array.from(latencies).sort());
  const byOp = {} as LoadStats['byOp'];
  for (const op of ['insert', 'update', 'delete'] as const) {
    const mine = Array.from(Float64Array.from(latencies.filter((_, i) => opOf[i] === op)).sort());
    byOp[op] = { ops: mine.length, p50Ms: percentile(mine, 50), p99Ms: percentile(mine, 99), maxMs: mine.length ? mine[mine.length - 1] : 0 };
  }
  return {
    byOp,
    eventLoopDelayP99Ms: loop.p99,
    eventLoopDelayMaxMs: loop.max,
    seconds,
    ops: latencies.length,
    errors,
    errorCodes,
    p50Ms: percentile(arr, 50),
    p90Ms: percentile(arr, 90),
    p99Ms: percentile(arr, 99),
    p999Ms: percentile(arr, 99.9),
    maxMs: arr.length ? arr[arr.length - 1] : 0,
    slowest,
  };
}
