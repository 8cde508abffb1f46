import { NO_SEAMS, type FailureSeams } from '../../core/engine/failure-seams.js';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Backfill, BackfillRequest } from '../../core/engine/ports/backfill.js';
import type { ClaimSession, CatchUp, CutoverResult, Engine, Migration, MigrationRequest, Plan } from '../../core/engine/types.js';
import type { AlterClassification, InPlaceStep } from '../../core/engine/ports/in-place.js';
import type { DiskSpace, TableSize } from '../../core/engine/ports/sizing.js';
import type { TablePlacement } from '../../core/engine/ports/placement.js';
import { classifyMysqlAlter } from './in-place/classify.js';
import { mysqlDiskSpace, mysqlTableSize, runMysqlStep } from './in-place/in-place.js';
import type { ComparisonRequest, RowComparison } from '../../core/engine/ports/comparison.js';
import type { Contraction, ContractRequest } from '../../core/engine/ports/contract.js';
import { openClaim } from './server/claim.js';
import { clusterMembers, GALERA_CHUNK_TIME_MS, GALERA_IN_PLACE, type GaleraMember } from './galera/cluster.js';
import { galeraNode, galeraOsuRefusal } from './server/galera-node.js';
import { UserError, CLEANUP_AFTER_FAILURE, ignoreFailure, failedAs } from '../../core/engine/errors.js';
import { openMysqlComparison } from './commands/compare.js';
import { contractBackupTriggers } from './commands/contract-backup.js';
import { prepareMysqlContract } from './commands/contract.js';
import { prepareMysqlRestore } from './commands/restore.js';
import type { RestoreTarget } from '../../core/engine/ports/restore.js';
import { createPool, serverZone, type ServerZone } from './server/connect.js';
import { describeConnectError, isDiskFullMysql, isTransientMysqlError } from './server/errors.js';
import { parseMysqlUrl, settleMysqlTarget, type MysqlTarget } from './server/target.js';
import { cutover, dropSentry } from './cutover/cutover.js';
import { existingTriggers, tableExists } from './schema/inspect.js';
import { dropTriggerBounded } from './capture/trigger/capture-triggers.js';
import { MysqlHelperTables } from './server/helper-store.js';
import { MysqlMigration, type MysqlServer } from './migration.js';
import { helperNames, parseTableName, type MysqlPlan } from './schema/plan.js';
import { buildPlan } from './prepare/build-plan.js';
import { BinlogHub } from './capture/binlog/hub.js';
import { dropGate } from './galera/gate.js';
import { probeNameTaken } from './schema/probe.js';
import { qualified } from './server/sql.js';
import { readState } from './server/state.js';
import { prepareMysqlBackfill } from './commands/backfill.js';
import { childKeysBack, setChildrenBack, setKeysBack } from './cutover/child-keys.js';
import { keptByRevert } from './schema/kept-by-revert.js';
import { oldTables } from './schema/old-tables.js';
import { isBackfill, openCheckpoint } from '../../core/engine/state/checkpoint.js';
import { MAX_COPY_THREADS } from '../../core/engine/defaults.js';
import { mysqlTerms } from './server-terms.js';

/**
 * The copy's and a batch's chunk time unless told otherwise. Each chunk's commit writes its rows to
 * the binlog in one go, and the application's commits grouped behind it wait for that write. In
 * bench/ (1M-row wide table, 200 writes/s, replica attached): 100 ms chunks let writers wait up to
 * 90-179 ms, 50 ms up to 54-84 ms (p99 52-57 -> 33-35 ms), 25 ms up to 50-66 ms; the wall time the
 * same at 50 ms (14.3-14.6 s against 14.4-14.8 s) and 5% longer at 25 ms.
 */
const MYSQL_CHUNK_TIME_MS = 50;
export async function createMysqlEngine(url: string): Promise<MysqlEngine> {
  const target = await settleMysqlTarget(parseMysqlUrl(url)).catch((error: unknown) => {
    throw describeConnectError(error, url);
  });
  // The copy's sessions and room beside them for the applier and the checks.
  const pool = createPool(target, MAX_COPY_THREADS + 4);
  let version: string;
  let zone: ServerZone;
  let lowerCaseNames: boolean;
  let galera: boolean;
  try {
    const [rows] = await pool.query<RowDataPacket[]>('SELECT VERSION() AS v, @@lower_case_table_names AS lc');
    version = String(rows[0].v);
    lowerCaseNames = Number(rows[0].lc) === 1;
    zone = await serverZone(pool);
    galera = (await galeraNode(pool)) !== null;
  } catch (error) {
    await pool.end().catch(ignoreFailure(CLEANUP_AFTER_FAILURE));
    throw describeConnectError(error, url);
  }
  // Sessions opened from now on pin their DDL to total order; those open already started with the
  // server's default, which the galera check refuses unless it is TOI.
  if (galera) target.totalOrder = true;
  // With lower_case_table_names=1 the server stores, and the binlog names, every database and table in
  // lower case: the names we match row events by must be spelt the same way, whatever the user typed.
  const named = lowerCaseNames ? { ...target, database: target.database.toLowerCase() } : target;
  return new MysqlEngine(named, pool, /mariadb/i.test(version) ? 'mariadb' : 'mysql', zone, lowerCaseNames, galera);
}

export class MysqlEngine implements Engine, MysqlServer {
  readonly kind = 'mysql' as const;
  readonly terms = mysqlTerms;
  get chunkTimeMs(): number {
    return this.galera ? GALERA_CHUNK_TIME_MS : MYSQL_CHUNK_TIME_MS;
  }
  readonly helperTables: MysqlHelperTables;
  private readonly hubs = new Map<string, BinlogHub>();
  private members?: Promise<GaleraMember[] | null>;

  constructor(
    readonly target: MysqlTarget,
    readonly pool: Pool,
    readonly flavor: 'mariadb' | 'mysql',
    readonly zone: ServerZone,
    private readonly lowerCaseNames = false,
    /** wsrep on: a Galera node (galera/README.md). */
    readonly galera = false,
  ) {
    this.helperTables = new MysqlHelperTables(pool, target.database, (table) => parseTableName(this.fold(table), target.database), helperNames);
  }

  get database(): string {
    return this.target.database;
  }

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

  /**
   * On a Galera node RSU is refused before the probe is made (a DDL there changes one node
   * only), and under TOI the in-place path says why it is safe there: it only ever takes parts the
   * server's counters prove metadata only. A copy is refused by the galera check, before anything is made.
   */
  async classifyAlter(table: string, alter: string): Promise<AlterClassification> {
    const galera = await galeraNode(this.pool);
    const osu = galera && galeraOsuRefusal(galera);
    if (osu) throw new UserError(osu);
    const classified = await classifyMysqlAlter(this.pool, this.flavor, this.target.database, parseTableName(this.fold(table), this.target.database), alter);
    if (!galera) return classified;
    return classified.path === 'in-place' ? { ...classified, why: `${classified.why}; ${GALERA_IN_PLACE}` } : classified;
  }

  runInPlaceStep(step: InPlaceStep, lockTimeoutMs: number): Promise<void> {
    return runMysqlStep(this.target, this.pool, step, lockTimeoutMs);
  }

  tableSize(table: string): Promise<TableSize> {
    return mysqlTableSize(this.pool, this.target.database, parseTableName(this.fold(table), this.target.database));
  }

  /** A MySQL or MariaDB table lives on the server the URL names (and its replicas). */
  placement(): Promise<TablePlacement> {
    return Promise.resolve({ kind: 'local' });
  }

  diskSpace(): Promise<DiskSpace> {
    return mysqlDiskSpace(this.pool, this.target);
  }

  async prepare(request: MigrationRequest): Promise<Migration> {
    // MySQL 8 can RENAME under LOCK TABLES, the simple way for a set there, but is not installable where the tests run.
    if (request.set?.length && this.flavor === 'mysql') throw new UserError('several tables in one cut-over are supported on MariaDB only, not yet on MySQL');
    return this.resume(await buildPlan(this.pool, this.target.database, { ...request, table: this.fold(request.table) }, this.flavor));
  }

  jointCutover(parts: { migration: Migration; catchUp: CatchUp }[], lockTimeoutMs: number, seams: FailureSeams = NO_SEAMS): Promise<CutoverResult> {
    const swaps = parts.map(({ migration, catchUp }) => {
      if (!(migration instanceof MysqlMigration)) throw new Error('not a MySQL migration');
      return migration.swapPart(catchUp);
    });
    return cutover(this.target, this.pool, swaps, lockTimeoutMs, this.flavor, seams);
  }

  prepareBackfill(request: BackfillRequest): Promise<Backfill> {
    return prepareMysqlBackfill(this, { ...request, table: this.fold(request.table) });
  }

  /** The binlog reader a run follows its table with: a set's is shared by its tables' runs (`capture/binlog/hub.ts`). */
  binlogHub(plan: MysqlPlan): BinlogHub {
    const tables = [`${plan.database}.${plan.table}`, ...(plan.set ?? [])].sort();
    if (tables.length === 1) return new BinlogHub(this.target, this.zone, this.pool, tables);
    const key = tables.join('\0');
    let hub = this.hubs.get(key);
    if (!hub) this.hubs.set(key, (hub = new BinlogHub(this.target, this.zone, this.pool, [...tables])));
    return hub;
  }

  galeraMembers(fresh = false): Promise<GaleraMember[] | null> {
    if (fresh) this.members = undefined;
    this.members ??= this.galera ? clusterMembers(this.target, this.pool) : Promise.resolve(null);
    this.members.catch(() => (this.members = undefined));
    return this.members;
  }

  /** The one place a plan's detail is taken for MySQL's: it was made by buildPlan, here or in the run that saved it. */
  resume(plan: Plan): Migration {
    const detail = plan.detail as Partial<MysqlPlan> & Omit<MysqlPlan, 'children' | 'droppedForeignKeys' | 'shadowAlter'>;
    // A checkpoint saved before child keys and DROP FOREIGN KEY were planned has neither: it could have had no such ALTER.
    const known = {
      ...detail,
      children: detail.children ?? [],
      droppedForeignKeys: detail.droppedForeignKeys ?? [],
      shadowAlter: detail.shadowAlter ?? plan.alter,
    };
    return new MysqlMigration(this, { ...plan, detail: known });
  }

  isTransient(error: unknown): boolean {
    return isTransientMysqlError(error);
  }

  isDiskFull(error: unknown): boolean {
    return isDiskFullMysql(error);
  }

  async loadCheckpoint(table: string): Promise<string | null> {
    return readState(this.pool, this.target.database, helperNames(this.fold(table).split('.').pop()!).state);
  }

  /**
   * The old table only when asked: after a successful run it is the rollback copy. A revert window's
   * checkpoint, or the mark the revert's cleanup leaves on it, means `<table>__new` is no shadow but
   * the new table (set aside by the revert, or about to be): it is the user's data, and stays.
   */
  async cleanupLeftovers(table: string, options: { dropOld: boolean; dryRun?: boolean }): Promise<string[]> {
    const base = this.fold(table).split('.').pop()!;
    const names = helperNames(base);
    const database = this.target.database;
    const saved = await this.checkpointPlan(base);
    // The old table the dead run chose (a way back's is its shadow); without a checkpoint, the family's first name.
    const old = saved ? (saved.reverse ? saved.detail.shadow : saved.detail.old) : names.old;
    // A dead run's triggers went with its original to its old table; earlier runs' old tables are looked at too.
    const olds = [...new Set([old, ...(await oldTables(this.pool, database, base))])];
    const shadow = saved?.reverse || (await keptByRevert(this.pool, database, names.shadow)) ? [] : [names.shadow];
    const tables = [...shadow, names.state, names.heartbeat, names.log, names.reverseLog, ...(options.dropOld ? [old] : [])];
    const found: string[] = [];
    // Trigger names are the database's: a dead run's are found on the original or, after its swap, on
    // the old table; a revert window's on the new table, under either name.
    // Before the window's log they name, as every write to their table opens it.
    const prelock = await existingTriggers(this.pool, database, Object.values(names.reversePrelockTriggers), [base, ...olds]);
    const triggers = [
      ...prelock,
      ...(await existingTriggers(this.pool, database, Object.values(names.captureTriggers), [base, ...olds])),
      ...(await existingTriggers(this.pool, database, Object.values(names.reverseTriggers), [base, names.shadow])),
    ];
    // A contract killed while it filled its backup leaves the triggers that keep the backup level.
    const backupTriggers = await contractBackupTriggers(this.pool, database, base);
    triggers.push(...backupTriggers);
    for (const name of tables) if (await tableExists(this.pool, database, name)) found.push(name);
    // Real probes outlive a run killed mid-probe; a table of a probe's name without the mark is the user's.
    for (const name of names.probes) if ((await probeNameTaken(this.pool, database, name)) === 'probe') found.push(name);
    const kind = (name: string) =>
      backupTriggers.includes(name) ? "a contract's backup capture" : prelock.includes(name) ? "a revert window's prelock trigger" : 'capture trigger';
    const described = (name: string) => `${database}.${name} (${kind(name)})`;
    // A Galera run's gate (galera/gate.ts): its triggers hold writers at a cut-over, and read its table.
    const gate = [
      ...(await existingTriggers(this.pool, database, Object.values(names.gateTriggers), [base, ...olds])).map((n) => `${database}.${n} (Galera gate trigger)`),
      ...((await tableExists(this.pool, database, names.gate)) ? [`${database}.${names.gate}`] : []),
    ];
    if (options.dryRun) return [...triggers.map(described), ...gate, ...found.map((name) => `${database}.${name}`)];
    const dropped: string[] = [];
    // Before anything else: a run killed in its cut-over may have left other tables' keys on the shadow.
    if (saved) dropped.push(...(await childKeysBack(this.pool, saved.detail)).map((k) => `${k} (pointed back at ${base})`));
    if (saved) dropped.push(...(await setKeysBack(this.pool, saved.detail)).map((k) => `${k} (moved back to ${base})`));
    // Its set's children's keys on their shadows reference its shadow: back to the children before the shadow goes.
    if (saved && !saved.reverse)
      dropped.push(...(await setChildrenBack(this.pool, saved.detail, (t) => helperNames(t).shadow)).map((k) => `${k} (moved back to its table)`));
    // First: each slows every write to the table until it is gone.
    for (const name of triggers) {
      await dropTriggerBounded(this.target, this.pool, database, name);
      dropped.push(described(name));
    }
    if (gate.length) dropped.push(...(await dropGate(this.pool, database, base, olds)));
    // A revert's sentry takes the new table's name, a run's the old table's (only a sentry is dropped).
    const sentries = [...olds, names.shadow];
    for (const name of sentries) if (await dropSentry(this.pool, database, name)) dropped.push(`${database}.${name} (sentry)`);
    for (const name of found) {
      if (sentries.includes(name) && dropped.includes(`${database}.${name} (sentry)`)) continue;
      await this.pool.query(`DROP TABLE IF EXISTS ${qualified(database, name)}`);
      dropped.push(`${database}.${name}`);
    }
    return dropped;
  }

  /** The plan a dead migrate run saved (a revert window's included), if there is one. */
  private async checkpointPlan(table: string): Promise<{ detail: MysqlPlan; reverse: boolean } | null> {
    const text = await readState(this.pool, this.target.database, helperNames(table).state).catch(
      failedAs(null, 'no readable checkpoint: cleanup then works from the catalog alone'),
    );
    if (!text) return null;
    // This table's, and not one put back after its run (openCheckpoint): its plan says which keys and old table to touch.
    const checkpoint = openCheckpoint(text, this, table);
    if (isBackfill(checkpoint)) return null;
    const plan = checkpoint.plan;
    const detail = plan.detail as Omit<MysqlPlan, 'children'> & { children?: MysqlPlan['children'] };
    return { detail: { ...detail, children: detail.children ?? [] }, reverse: plan.reverse === true }; // no children in a checkpoint saved before they were planned
  }

  openComparison(request: ComparisonRequest): Promise<RowComparison> {
    return openMysqlComparison(this.target, this.pool, (name) => this.fold(name), request);
  }

  prepareContract(request: ContractRequest): Promise<Contraction> {
    return prepareMysqlContract(this, (name) => this.fold(name), request);
  }

  prepareRestore(request: { table: string; backup: string }): Promise<RestoreTarget> {
    return prepareMysqlRestore(this, (name) => this.fold(name), request);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
