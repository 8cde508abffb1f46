/**
 * One seed of the Citus path (`--path citus`): a random table (grammar.ts) distributed by its first
 * key column, with a co-located child that references it ON DELETE CASCADE, made alike in two
 * databases of one Citus cluster. One is migrated by shadowcut through its coordinator; the twin
 * takes the same writes and Citus's own ALTER TABLE. Writers insert, update (a composite key's second
 * column included) and delete through both coordinators; a reader times its waits; the drawn fault
 * kills the run in its copy, verification or cut-over and resumes it. The oracle is
 * test/support/citus-twins.ts: every node's definitions, the distribution metadata and every shard's
 * rows. When Citus's own ALTER fails, shadowcut must have refused and left the table as it was.
 */
import type pg from 'pg';
import type { CitusCluster } from '../support/citus.js';
import { citusTwins, type CitusTwins } from '../support/citus-twins.js';
import { postgresChaos } from './database.js';
import { createTableSql, keyValues, makeAlter, makeTable, rowValues, writable, type TableSpec } from './grammar.js';
import { Prng } from './prng.js';
import { Reader } from './reader.js';
import { cliRun, pacingArgs, waitedTooLong, type Exit, type SeedOutcome } from './scenario.js';

const NAME = 'ct';
const CHILD = 'ct_items';
const FAULTS = ['none', 'copy', 'verify', 'cutover'] as const;

/** The grammar's table, as Citus takes it: a unique index must hold the distribution column, so the unique value is a plain one here. */
function distributable(t: TableSpec): TableSpec {
  return { ...t, unique: null, indexes: t.indexes.filter((ix) => !ix.unique), partition: undefined, uniqueKey: undefined };
}

const q = (name: string) => `"${name}"`;

export async function runCitusSeed(cluster: CitusCluster, cli: string, seed: number, rows: number): Promise<SeedOutcome> {
  const began = Date.now();
  const root = new Prng(seed);
  const t = distributable(makeTable(root.fork(1), 'postgres'));
  const alter = makeAlter(root.fork(2), t, root.fork(3));
  const fault = root.fork(4).pick(FAULTS);
  const outcome = (verdict: SeedOutcome['verdict'], reason: string, extra: Partial<SeedOutcome> = {}): SeedOutcome => ({
    engine: 'postgres',
    seed,
    path: 'citus',
    took: null,
    reader: null,
    writer: null,
    verdict,
    reason,
    alter,
    faults: fault === 'none' ? [] : [`SIGKILL in ${fault}, then --resume`],
    seconds: (Date.now() - began) / 1000,
    capturedBy: null,
    ...extra,
  });
  const twins = await citusTwins(cluster, `chaos_${process.pid}_${seed}`);
  const made = await setup(twins, t, root.fork(5), rows).then(
    () => null,
    (error: Error) => error.message.split('\n')[0],
  );
  // A table Citus itself will not distribute (a type without a hash function, say) is no run at all.
  if (made) return outcome('refused like the server', `Citus does not distribute the drawn table: ${made}`);
  const readerDb = postgresChaos(twins.live.coordinatorUrl, null);
  const reader = new Reader(readerDb, NAME);
  await reader.start();
  const writers = new Writers(twins, t, rows, alter);
  writers.start(root.fork(6));
  let took: SeedOutcome['took'] = null;
  const args = ['migrate', '--execute', '--json', '--url', twins.live.coordinatorUrl, '--table', NAME, '--alter', alter, ...pacingArgs(rows)];
  const phases = (phase: string) => {
    if (phase === 'in-place') took = 'in-place';
    if (phase === 'copy') took = 'copy';
    return phase === fault ? 150 : null;
  };
  let run: Exit = await cliRun(cli, args, phases);
  if (run.killed) run = await cliRun(cli, [...args, '--resume'], phases);
  await new Promise((r) => setTimeout(r, 300)); // writes after the swap land in the new table
  const [written, read] = [await writers.stop(), await reader.stop()];
  await readerDb.close();
  const nativeAlter = (clause: string) =>
    twins.twin.coordinator.query(`ALTER TABLE ${q(NAME)} ${clause}`).then(
      () => null,
      (error: Error) => error.message.split('\n')[0],
    );
  let native = await nativeAlter(alter);
  // Citus takes some subcommands only alone ("cannot execute ADD CONSTRAINT command with other
  // subcommands"), which its ALTER says before changing anything: where shadowcut made the change in
  // place part by part, the twin takes the same parts one by one, as a DBA would.
  if (native && run.code === 0 && took === 'in-place' && run.parts.length > 1) {
    const failed = [];
    for (const part of run.parts) failed.push(await nativeAlter(part.clause));
    native = failed.find((f) => f !== null) ?? null;
  }
  const waits = { reader: read, writer: { longestMs: written.longestMs, longestAt: written.longestAt } };
  if (written.error) return outcome('FAIL', `a writer failed: ${written.error}`, { took, ...waits });
  if (read.errors) return outcome('FAIL', `the reader failed: ${read.firstError}`, { took, ...waits });
  const tables = [NAME, CHILD];
  const kept = [`${NAME}__old`, `${NAME}_pkey__old`];
  const differences = await twins.difference(tables, run.code === 0 ? kept : []);
  if (differences.length) {
    const what = run.code === 0 ? 'migrated' : `refused (${firstLine(run.stderr)})`;
    return outcome('FAIL', `${what}, and differs from the twin: ${differences.slice(0, 3).join(' | ')}`, { took, ...waits });
  }
  if (run.code !== 0) {
    return native
      ? outcome('refused like the server', `${firstLine(run.stderr)} / Citus: ${native}`, { took, ...waits })
      : outcome('refused', firstLine(run.stderr), { took, ...waits });
  }
  if (native) return outcome('FAIL', `migrated, but Citus's own ALTER fails: ${native}`, { took, ...waits });
  const slow = waitedTooLong('postgres', took, 'the reader', read, run.parts) ?? waitedTooLong('postgres', took, 'a writer', waits.writer, run.parts);
  if (slow) return outcome('FAIL', slow, { took, ...waits });
  return outcome('pass', `${written.transactions} transactions through the coordinator`, { took, ...waits });
}

function firstLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .find((l) => l.startsWith('shadowcut:')) ??
    text.trim().split('\n')[0] ??
    ''
  );
}

/** The table distributed by its first key column in a few shards, its child beside it, the same rows in both databases. */
async function setup(twins: CitusTwins, t: TableSpec, r: Prng, rows: number): Promise<void> {
  const key = t.key.map((c) => q(c.name));
  const statements = [
    'SET citus.shard_count = 4',
    ...createTableSql(t, NAME),
    `SELECT create_distributed_table('${NAME}', '${t.key[0].name}')`,
    `CREATE TABLE ${q(CHILD)} (id bigint NOT NULL, ${t.key.map((c) => `${q(c.name)} ${c.type.sql} NOT NULL`).join(', ')}, w int NOT NULL DEFAULT 0,
       PRIMARY KEY (${key[0]}, id), FOREIGN KEY (${key.join(', ')}) REFERENCES ${q(NAME)} (${key.join(', ')}) ON DELETE CASCADE)`,
    `SELECT create_distributed_table('${CHILD}', '${t.key[0].name}', colocate_with => '${NAME}')`,
  ];
  const columns = writable(t)
    .map((c) => q(c.name))
    .join(', ');
  for (let from = 1; from <= rows; from += 200) {
    const batch = Array.from({ length: Math.min(200, rows - from + 1) }, (_, i) => `(${rowValues(r, t, from + i).join(', ')})`);
    statements.push(`INSERT INTO ${q(NAME)} (${columns}) VALUES ${batch.join(', ')}`);
  }
  statements.push(`INSERT INTO ${q(CHILD)} (id, ${key.join(', ')}) SELECT row_number() OVER (), ${key.join(', ')} FROM ${q(NAME)} WHERE random() < 0.3`);
  for (const sql of statements.slice(0, -1)) await both(twins, sql);
  // The child's rows drawn once, on the live side, and given to the twin as they are.
  await twins.live.coordinator.query(statements[statements.length - 1]);
  const { rows: items } = await twins.live.coordinator.query<{ line: string }>(
    `SELECT format('(%s, %s)', id, ${t.key.map((c) => `quote_literal(${q(c.name)})`).join(` || ', ' || `)}) AS line FROM ${q(CHILD)}`,
  );
  if (items.length) await twins.twin.coordinator.query(`INSERT INTO ${q(CHILD)} (id, ${key.join(', ')}) VALUES ${items.map((i) => i.line).join(', ')}`);
}

async function both(twins: CitusTwins, sql: string): Promise<void> {
  await twins.live.coordinator.query(sql);
  await twins.twin.coordinator.query(sql);
}

/**
 * Two writers on disjoint rows (writer w owns the rows numbered w mod 2), each transaction made on the
 * live database and then on the twin. A composite key's second column changes (a key move; the first
 * is the distribution column, which Citus does not let change) only on rows no child points at.
 */
class Writers {
  private running = true;
  private loops: Promise<void>[] = [];
  private readonly began = performance.now();
  private readonly stats = { transactions: 0, longestMs: 0, longestAt: 0, error: null as string | null };
  /** Rows whose key moved, by row number: their key as SQL literals. */
  private readonly moved = new Map<number, string[]>();

  constructor(
    private readonly twins: CitusTwins,
    private readonly t: TableSpec,
    private readonly rows: number,
    private readonly alter: string,
  ) {}

  start(r: Prng): void {
    for (let w = 0; w < 2; w++) this.loops.push(this.loop(r.fork(w), w));
  }

  async stop(): Promise<typeof this.stats> {
    this.running = false;
    await Promise.all(this.loops);
    return this.stats;
  }

  private keyOf(n: number): string[] {
    return this.moved.get(n) ?? keyValues(this.t, n);
  }

  private async loop(r: Prng, w: number): Promise<void> {
    const clients = [await this.twins.live.coordinator.connect(), await this.twins.twin.coordinator.connect()];
    let next = this.rows + 1 + w;
    try {
      while (this.running && !this.stats.error) {
        const n = w + 2 * r.int(0, Math.floor(this.rows / 2));
        const fresh = next;
        const { statements, move } = this.draw(r, n, fresh);
        if (statements[0]?.startsWith('INSERT')) next += 2;
        const changed = [];
        for (const [i, client] of clients.entries()) changed.push(await this.transaction(client, statements, i === 0));
        if (changed[0] !== changed[1])
          throw new Error(`the same transaction changed ${changed[0]} row(s) in the migrated database and ${changed[1]} in the twin: ${statements.join('; ')}`);
        if (move && changed[0] > 0) this.moved.set(n, move);
        this.stats.transactions++;
        await new Promise((done) => setTimeout(done, r.int(0, 20)));
      }
    } catch (error) {
      this.stats.error ??= (error as Error).message.split('\n')[0];
    } finally {
      for (const c of clients) c.release();
    }
  }

  private draw(r: Prng, n: number, fresh: number): { statements: string[]; move?: string[] } {
    const t = this.t;
    const key = this.keyOf(n);
    const where = t.key.map((c, i) => `${q(c.name)} = ${key[i]}`).join(' AND ');
    // What the ALTER names (a column it drops, renames, retypes or checks) the application leaves
    // alone, as it would have to with the native ALTER, so that the same statements work before and
    // after the swap; a column whose default or NOT NULL the ALTER changes it writes itself in full,
    // or its rows would take the default of the moment each side made the change.
    const named = (c: { name: string }) => this.alter.includes(q(c.name));
    const spelled = (c: { name: string }) => new RegExp(`${q(c.name)} (SET NOT NULL|SET DEFAULT|DROP DEFAULT)`).test(this.alter);
    const others = writable(t).filter((c) => !t.key.includes(c) && !named(c));
    const pick = r.int(0, 4);
    const insertable = writable(t).every((c) => !named(c) || spelled(c) || c.nullable || c.default !== undefined);
    if (pick === 0 && insertable) {
      const values = rowValues(r, t, fresh);
      const kept = writable(t).flatMap((c, i) => (!named(c) ? [[q(c.name), values[i]]] : spelled(c) ? [[q(c.name), c.type.value(r, fresh)]] : []));
      return {
        statements: [`INSERT INTO ${q(NAME)} (${kept.map(([c]) => c).join(', ')}) VALUES (${kept.map(([, v]) => v).join(', ')}) ON CONFLICT DO NOTHING`],
      };
    }
    if (pick === 1) return { statements: [`DELETE FROM ${q(NAME)} WHERE ${where}`] };
    if (pick === 2 && t.key.length > 1) {
      const move = [key[0], `'m${n}x${r.int(0, 1_000_000)}'`];
      const child = t.key.map((c, i) => `c.${q(c.name)} = ${key[i]}`).join(' AND ');
      return {
        statements: [`UPDATE ${q(NAME)} SET ${q(t.key[1].name)} = ${move[1]} WHERE ${where} AND NOT EXISTS (SELECT 1 FROM ${q(CHILD)} c WHERE ${child})`],
        move,
      };
    }
    if (pick <= 3 && others.length) {
      const c = r.pick(others);
      const value = c.default !== undefined && r.chance(0.2) ? 'DEFAULT' : c.type.value(r, n);
      return { statements: [`UPDATE ${q(NAME)} SET ${q(c.name)} = ${value} WHERE ${where}`] };
    }
    return { statements: [`UPDATE ${q(CHILD)} SET w = w + 1 WHERE ${q(t.key[0].name)} = ${key[0]}`] };
  }

  /** The statements in one transaction; the rows they changed. A writer's longest wait is timed on the migrated database. */
  private async transaction(client: pg.PoolClient, statements: string[], live: boolean): Promise<number> {
    const start = performance.now();
    let changed = 0;
    await client.query('BEGIN');
    try {
      for (const sql of statements) changed += (await client.query(sql)).rowCount ?? 0;
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {}); // the statement's error is what is reported
      throw error;
    }
    const took = performance.now() - start;
    if (live && took > this.stats.longestMs) Object.assign(this.stats, { longestMs: Math.round(took), longestAt: Math.round(start - this.began) });
    return changed;
  }
}
