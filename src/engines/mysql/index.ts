import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { ClaimSession } from '../../core/claim.js';
import type {
  CatchUp,
  ChangeSink,
  CheckResult,
  ConsistentView,
  CutoverOptions,
  CutoverResult,
  Engine,
  Key,
  KeyRange,
  MigrationRequest,
  Plan,
  Position,
  ProbeComparison,
  Probes,
  Session,
} from '../../core/types.js';
import { compareBinlogPositions, openBinlogStream } from './binlog.js';
import { runChecks } from './checks.js';
import { openClaim } from './claim.js';
import { differingKeys, openConsistentView } from './checksum.js';
import { createPool, describeConnectError, isTransientMysqlError, parseMysqlUrl, serverZone, type MysqlTarget, type ServerZone } from './connect.js';
import { RowMover } from './copy.js';
import { cutover, dropSentry, dropTriggers, isSentry } from './cutover.js';
import { tableExists } from './inspect.js';
import { openMysqlProbes } from './probes.js';
import { LockedSession } from './lock.js';
import { buildDeferred, dropDeferred } from './deferred-indexes.js';
import { alterInstantly } from './instant.js';
import { compareWithAlter } from './mapping-proof.js';
import { buildPlan, detailOf, helperNames, parseTableName, type MysqlPlan } from './plan.js';
import { qualified } from './sql.js';

export async function createMysqlEngine(url: string): Promise<MysqlEngine> {
  const target = parseMysqlUrl(url);
  const pool = createPool(target);
  let version: string;
  let zone: ServerZone;
  let lowerCaseNames: boolean;
  try {
    const [rows] = await pool.query<RowDataPacket[]>('SELECT VERSION() AS v, @@lower_case_table_names AS lc');
    version = String(rows[0].v);
    lowerCaseNames = Number(rows[0].lc) === 1;
    zone = await serverZone(pool);
  } catch (error) {
    await pool.end().catch(() => {});
    throw describeConnectError(error, url);
  }
  // With lower_case_table_names=1 the server stores, and the binlog names, every database and table in
  // lower case: the names we match row events by must be spelt the same way, whatever the user typed.
  const named = lowerCaseNames ? { ...target, database: target.database.toLowerCase() } : target;
  return new MysqlEngine(named, pool, /mariadb/i.test(version) ? 'mariadb' : 'mysql', zone, lowerCaseNames);
}

export class MysqlEngine implements Engine {
  readonly kind = 'mysql' as const;
  private movers = new WeakMap<MysqlPlan, RowMover>();
  private readonly checkpointTables = new Set<string>();

  constructor(
    readonly target: MysqlTarget,
    readonly pool: Pool,
    readonly flavor: 'mariadb' | 'mysql',
    readonly zone: ServerZone,
    private readonly lowerCaseNames = false,
  ) {}

  /** A table name as the server stores it. */
  private fold(table: string): string {
    return this.lowerCaseNames ? table.toLowerCase() : table;
  }

  qualify(table: string): string {
    return `${this.target.database}.${parseTableName(this.fold(table), this.target.database)}`;
  }

  openClaim(table: string): Promise<ClaimSession> {
    return openClaim(this.target, this.qualify(table));
  }

  prepare(request: MigrationRequest): Promise<Plan> {
    return buildPlan(this.pool, this.target.database, { ...request, table: this.fold(request.table) });
  }

  /** Leftovers are refused by prepare, which a resumed run skips, so resuming changes nothing here. */
  checks(plan: Plan): Promise<CheckResult[]> {
    return runChecks(this.pool, detailOf(plan), this.zone);
  }

  alterInstantly(plan: Plan, lockTimeoutMs: number): Promise<true | string> {
    return alterInstantly(this.target, this.pool, detailOf(plan), plan.alter, lockTimeoutMs);
  }

  compareWithAlter(plan: Plan, anchors: Key[] | null, rows: number): Promise<ProbeComparison> {
    return compareWithAlter(this.pool, detailOf(plan), plan.alter, anchors, rows);
  }

  async createShadow(plan: Plan): Promise<void> {
    const p = detailOf(plan);
    const shadow = qualified(p.database, p.shadow);
    await this.pool.query(`CREATE TABLE ${shadow} LIKE ${qualified(p.database, p.table)}`);
    // Carry the AUTO_INCREMENT counter, so ids freed by deletes at the end of the table are not reused.
    if (p.facts.autoIncrement) await this.pool.query(`ALTER TABLE ${shadow} AUTO_INCREMENT = ${p.facts.autoIncrement}`);
    await this.pool.query(`ALTER TABLE ${shadow} ${plan.alter}`);
    await dropDeferred(this.pool, p.database, p.shadow, p.deferredIndexes);
  }

  /** A run killed in its cut-over may have left the moved triggers on the shadow; they would fire for our own writes. */
  async resumeShadow(plan: Plan): Promise<void> {
    await dropTriggers(this.pool, detailOf(plan));
  }

  openChanges(plan: Plan, sink: ChangeSink, from?: Position) {
    return openBinlogStream(this.target, this.zone, this.pool, detailOf(plan), sink, from);
  }

  nextBoundary(plan: Plan, after: Key | null, rows: number): Promise<Key | null> {
    return this.mover(plan).nextBoundary(this.pool, after, rows);
  }

  copyRange(plan: Plan, range: KeyRange): Promise<number> {
    return this.mover(plan).copyRange(this.pool, range);
  }

  applyKeys(plan: Plan, keys: Key[], session?: Session): Promise<void> {
    const locked = session instanceof LockedSession ? session.conn : null;
    return this.mover(plan).applyKeys(locked ?? this.pool, keys, locked !== null);
  }

  /** A sorted build of the whole index costs a fraction of maintaining it row by row during the copy. */
  async afterCopy(plan: Plan): Promise<void> {
    const p = detailOf(plan);
    await buildDeferred(this.pool, p.database, p.shadow, p.deferredIndexes);
  }

  consistentView(plan: Plan, catchUp: CatchUp, lockTimeoutMs: number): Promise<ConsistentView> {
    return openConsistentView(this.target, this.pool, detailOf(plan), this.mover(plan), catchUp, lockTimeoutMs);
  }

  compareKeys(plan: Plan, keys: Key[], session: Session): Promise<Key[]> {
    if (!(session instanceof LockedSession)) throw new Error(`not a locked MySQL session: ${session.id}`);
    return differingKeys(session.conn, detailOf(plan), keys);
  }

  cutover(plan: Plan, options: CutoverOptions): Promise<CutoverResult> {
    return cutover(this.target, this.pool, detailOf(plan), options);
  }

  async cleanup(plan: Plan, options: { dropOld: boolean; cutOver: boolean }): Promise<void> {
    const p = detailOf(plan);
    const names = helperNames(p.table);
    await dropSentry(this.pool, p.database, p.old);
    const drop = [names.state, names.heartbeat];
    if (!options.cutOver) drop.push(p.shadow);
    if (options.cutOver && options.dropOld) drop.push(p.old);
    for (const name of drop) await this.pool.query(`DROP TABLE IF EXISTS ${qualified(p.database, name)}`);
    this.checkpointTables.delete(qualified(p.database, names.state));
  }

  async swapped(plan: Plan): Promise<boolean> {
    const p = detailOf(plan);
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT TABLE_NAME t, TABLE_COMMENT c FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?)',
      [p.database, p.shadow, p.old],
    );
    const old = rows.find((r) => r.t === p.old);
    return !rows.some((r) => r.t === p.shadow) && old !== undefined && !isSentry(String(old.c));
  }

  isTransient(error: unknown): boolean {
    return isTransientMysqlError(error);
  }

  async saveCheckpoint(plan: Plan, checkpoint: string): Promise<void> {
    const p = detailOf(plan);
    const table = qualified(p.database, helperNames(p.table).state);
    // Once per run, not at every save: each CREATE ... IF NOT EXISTS is DDL, written to the binlog and replayed by every replica.
    if (!this.checkpointTables.has(table)) {
      await this.pool.query(`CREATE TABLE IF NOT EXISTS ${table} (id TINYINT PRIMARY KEY, checkpoint LONGTEXT NOT NULL) ENGINE=InnoDB`);
      this.checkpointTables.add(table);
    }
    await this.pool.query(`REPLACE INTO ${table} (id, checkpoint) VALUES (1, ?)`, [checkpoint]);
  }

  async loadCheckpoint(table: string): Promise<string | null> {
    const name = helperNames(this.fold(table).split('.').pop()!).state;
    if (!(await tableExists(this.pool, this.target.database, name))) return null;
    const [rows] = await this.pool.query<RowDataPacket[]>(`SELECT checkpoint FROM ${qualified(this.target.database, name)} WHERE id = 1`);
    return rows.length ? String(rows[0].checkpoint) : null;
  }

  openProbes(plan: Plan, replicas: string[]): Promise<Probes> {
    return openMysqlProbes(this.target, this.pool, detailOf(plan), replicas);
  }

  /** The old table only when asked: after a successful run it is the rollback copy. */
  async cleanupLeftovers(table: string, options: { dropOld: boolean; dryRun?: boolean }): Promise<string[]> {
    const names = helperNames(this.fold(table).split('.').pop()!);
    const database = this.target.database;
    const tables = options.dropOld ? [names.shadow, names.state, names.heartbeat, names.old] : [names.shadow, names.state, names.heartbeat];
    const found: string[] = [];
    for (const name of tables) if (await tableExists(this.pool, database, name)) found.push(name);
    if (options.dryRun) return found.map((name) => `${database}.${name}`);
    const dropped: string[] = [];
    if (await dropSentry(this.pool, database, names.old)) dropped.push(`${database}.${names.old} (sentry)`);
    for (const name of found) {
      if (name === names.old && dropped.length && dropped[0].endsWith('(sentry)')) continue;
      await this.pool.query(`DROP TABLE IF EXISTS ${qualified(database, name)}`);
      dropped.push(`${database}.${name}`);
    }
    return dropped;
  }

  comparePositions(a: Position, b: Position): number {
    return compareBinlogPositions(a, b);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private mover(plan: Plan): RowMover {
    const p = detailOf(plan);
    let mover = this.movers.get(p);
    if (!mover) {
      mover = new RowMover(p, this.flavor);
      this.movers.set(p, mover);
    }
    return mover;
  }
}
