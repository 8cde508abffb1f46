import type { Pool, PoolConnection } from 'mysql2/promise';
import { NO_SEAMS } from '../../core/engine/failure-seams.js';
import { runChecks } from '../../core/engine/checks/check.js';
import type { CheckOptions, SampleProbe } from '../../core/engine/ports/preflight.js';
import type { AfterCopy } from '../../core/engine/ports/copy.js';
import type {
  CatchUp,
  CheckedCopy,
  CheckResult,
  ConsistentView,
  CutoverOptions,
  CutoverResult,
  LockProbe,
  Key,
  KeyRange,
  Migration,
  OldSnapshot,
  Plan,
  ProbeComparison,
  ProbeOptions,
  Probes,
  Reference,
  Session,
  ChangeSource,
  SnapshotView,
} from '../../core/engine/types.js';
import { BinlogSource } from './capture/binlog/source.js';
import { keysReferencing } from './capture/cascades.js';
import type { BinlogHub } from './capture/binlog/hub.js';
import { forwardCapture, reverseCapture, reverseCaptureOnShadow } from './capture/trigger/capture-target.js';
import { MysqlTriggerLog } from './capture/trigger/log.js';
import { ClusterHorizon } from './capture/trigger/horizon.js';
import { TriggerSource } from '../../core/engine/capture/trigger-source.js';
import { UserError } from '../../core/engine/errors.js';
import { cleanupSteps } from '../../core/engine/cleanup-steps.js';
import type { CleanupOptions } from '../../core/engine/ports/cleanup.js';
import { mysqlChecks } from './checks/index.js';
import { differingKeys, hasCrc32c, openConsistentView, planSides, rangeCheck } from './copy/checksum.js';
import { openSnapshotView, snapshotViewAllowed } from './copy/snapshot-view.js';
import type { MysqlTarget } from './server/target.js';
import type { ServerZone } from './server/connect.js';
import { Copier } from './copy/copy.js';
import { cutover, dropSentry, shadowAsBefore, type SwapPart } from './cutover/cutover.js';
import { isSwapped, pendingRename } from './cutover/rename-outcome.js';
import { buildDeferred } from './copy/deferred-indexes.js';
import { makeShadow } from './copy/shadow.js';
import { openMysqlSampleProbe } from './copy/sample-probe.js';
import { LockedSession } from './server/lock.js';
import { compareWithAlter, proveReverse } from './copy/mapping-proof.js';
import { buildReversePlan, revertRefusals } from './prepare/reverse-plan.js';
import { helperNames, type MysqlPlan } from './schema/plan.js';
import { openMysqlProbes } from './throttle/probes.js';
import { qualified } from './server/sql.js';
import { mysqlLockProbe } from './cutover/lock-probe.js';
import { dropOwnHelper } from './server/helper-tables.js';
import { markKeptByRevert } from './schema/kept-by-revert.js';
import { createStateTable, writeState } from './server/state.js';
import { childKeysBack, setKeysBack } from './cutover/child-keys.js';
import { mysqlOldSnapshots, type LockedLook } from './cutover/old-snapshots.js';
import { TrxList } from './server/trx-list.js';
import { dropGate, GaleraGate } from './galera/gate.js';
import { tableIdentity } from './schema/old-tables.js';
import { galeraCutover } from './cutover/galera.js';
import type { GaleraMember } from './galera/cluster.js';

/** What every migration on one server shares. */
export interface MysqlServer {
  target: MysqlTarget;
  pool: Pool;
  flavor: 'mariadb' | 'mysql';
  zone: ServerZone;
  /** The migration a plan describes (the engine's `resume`): a run's own, or its way back. */
  resume(plan: Plan): Migration;
  /** The binlog reader a plan's run follows its table with: its set's, which every table of it shares, or one of its own. */
  binlogHub(plan: MysqlPlan): BinlogHub;
  /** wsrep on: a Galera node. */
  galera: boolean;
  /** The Galera cluster's nodes, the connected one first; null off Galera. `fresh`: read again, not the first reading. */
  galeraMembers(fresh?: boolean): Promise<GaleraMember[] | null>;
}

/** One table's migration on MySQL/MariaDB: the plan, and the copier made from it. */
export class MysqlMigration implements Migration {
  private readonly copier: Copier;
  private readonly p: MysqlPlan;
  readonly changes: ChangeSource;
  private checkpointTable = false;
  /** Whether a shadow was begun: a lost session's retry makes it afresh. */
  private shadowTried = false;
  /** When each lock's last look for older snapshots was asked for. */
  private readonly lockedLooks = new WeakMap<Session, number>();
  /** On Galera, what holds writers on every node in place of LOCK TABLES; installed at the first need. */
  private galeraGate?: Promise<GaleraGate | null>;
  /** The copy's own digests of each range (made on first use: it asks the server for CRC32C). */
  private check?: (conn: PoolConnection, range: KeyRange) => Promise<boolean>;

  constructor(
    private readonly server: MysqlServer,
    readonly plan: Plan<MysqlPlan>,
  ) {
    this.p = plan.detail;
    this.copier = new Copier(this.p, server.flavor, plan.reverse === true);
    // The way back is always followed by triggers: made on the shadow before the swap, they follow
    // the new table from the swap's very instant, with no stream position to hand over at it.
    const capture = plan.reverse ? reverseCapture(this.p) : this.p.log === undefined ? null : forwardCapture(this.p);
    // On Galera the log is written on every node, each entry numbered by its own node's counter.
    const horizons =
      capture && server.galera ? new ClusterHorizon(() => server.galeraMembers(true).then((m) => m ?? []), capture.database, capture.log) : undefined;
    this.changes =
      capture === null
        ? new BinlogSource(server.binlogHub(this.p), this.p)
        : new TriggerSource(new MysqlTriggerLog(server.target, server.pool, server.flavor, capture, horizons));
  }

  /** The revert window's log and triggers, on this run's shadow. */
  private reverseLog(): MysqlTriggerLog {
    return new MysqlTriggerLog(this.server.target, this.pool, this.server.flavor, reverseCaptureOnShadow(this.p));
  }

  private get pool(): Pool {
    return this.server.pool;
  }

  checks(options: CheckOptions): Promise<CheckResult[]> {
    return runChecks(mysqlChecks, { pool: this.pool, target: this.server.target, plan: this.p, zone: this.server.zone, resuming: options.resuming });
  }

  openSampleProbe(): Promise<SampleProbe> {
    return openMysqlSampleProbe(this.pool, this.p, this.server.flavor);
  }

  compareWithAlter(anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison> {
    return compareWithAlter(this.pool, this.p, this.p.shadowAlter, anchors, rows);
  }

  async createShadow(): Promise<void> {
    const again = this.shadowTried;
    this.shadowTried = true;
    await makeShadow(this.pool, this.p, again);
  }

  /**
   * A run killed in its cut-over may have left the moved triggers on the shadow (they would fire for
   * our own writes) or its key index dropped, and the child keys pointed at the shadow while the original serves.
   */
  async resumeShadow(): Promise<void> {
    await childKeysBack(this.pool, this.p);
    await setKeysBack(this.pool, this.p);
    // One killed between its seal and its RENAME left every node's writers failing at the gate: opened
    // before the shadow's key index is made again, which on Galera holds every node's commits.
    if (this.server.galera) await new GaleraGate(this.pool, this.p, () => Promise.resolve([])).open();
    await shadowAsBefore(this.pool, this.p);
  }

  nextBoundary(after: Key | null, rows: number): Promise<Key | null> {
    return this.copier.nextBoundary(this.pool, after, rows);
  }

  copyRange(range: KeyRange): Promise<number> {
    return this.copier.copyRange(this.pool, range);
  }

  async copyAndChecksum(range: KeyRange): Promise<CheckedCopy> {
    this.check ??= rangeCheck(this.p, await hasCrc32c(this.pool));
    const check = this.check;
    return this.copier.copyChecked(this.pool, range, (conn) => check(conn, range));
  }

  applyKeys(keys: Key[], session?: Session): Promise<void> {
    const locked = session instanceof LockedSession ? session.conn : null;
    return this.copier.applyKeys(locked ?? this.pool, keys, locked !== null);
  }

  keysReferencing(references: Reference[], session?: Session): Promise<Key[]> {
    const locked = session instanceof LockedSession ? session.conn : null;
    const share = this.server.flavor === 'mariadb' ? ' LOCK IN SHARE MODE' : ' FOR SHARE';
    return keysReferencing(locked ?? this.pool, this.p, references, locked ? '' : share);
  }

  /**
   * A sorted build of the whole index costs a fraction of maintaining it row by row during the copy.
   * Only non-unique indexes are deferred (deferred-indexes.ts), so the shadow need not be level first.
   */
  async afterCopy(copied: AfterCopy): Promise<void> {
    await copied.transient('index build', () => copied.uniqueSafe(() => buildDeferred(this.pool, this.p.database, this.p.shadow, this.p.deferredIndexes)));
  }

  async consistentView(catchUp: CatchUp, lockTimeoutMs: number): Promise<ConsistentView> {
    return openConsistentView(this.server.target, this.pool, this.p, this.copier, catchUp, lockTimeoutMs, await this.gate());
  }

  /** No lock where MariaDB's snapshot can stand for one (copy/snapshot-view.ts); null where it cannot. */
  async snapshotView(catchUp: () => Promise<void>): Promise<SnapshotView | null> {
    if (!snapshotViewAllowed(this.p, this.server.flavor, this.server.galera)) return null;
    return openSnapshotView(this.server.target, this.p, this.copier, catchUp);
  }

  /** Off Galera, null; on it, the gate (made whole on the original at each close). */
  private gate(): Promise<GaleraGate | null> {
    this.galeraGate ??= this.server
      .galeraMembers()
      .then((members) => (members === null ? null : new GaleraGate(this.pool, this.p, () => this.server.galeraMembers(true).then((m) => m!))));
    this.galeraGate.catch(() => (this.galeraGate = undefined));
    return this.galeraGate;
  }

  compareKeys(keys: Key[], session: Session): Promise<Key[]> {
    if (!(session instanceof LockedSession)) throw new Error(`not a locked MySQL session: ${session.id}`);
    return differingKeys(session.conn, planSides(this.p), keys);
  }

  async cutover(options: CutoverOptions): Promise<CutoverResult> {
    const gate = await this.gate();
    const seams = options.seams ?? NO_SEAMS;
    if (gate) return galeraCutover(this.pool, this.swapPart(options.catchUp), gate, options.lockTimeoutMs, seams);
    return cutover(this.server.target, this.pool, [this.swapPart(options.catchUp)], options.lockTimeoutMs, this.server.flavor, seams);
  }

  /** This table's part of a swap, alone or with a set's others (the engine's `jointCutover`). */
  swapPart(catchUp: CatchUp): SwapPart {
    return { plan: this.p, catchUp };
  }

  openLockProbe(): Promise<LockProbe> {
    return Promise.resolve(mysqlLockProbe(this.server.target, this.p, this.server.galera));
  }

  /**
   * What goes is core's decision (core/engine/cleanup-steps.ts); this carries it out. A revert window's
   * capture goes only once the window is over (the revert made, or the window completed); the old and
   * the new table are both the user's data. A window that failed or was interrupted keeps everything,
   * so that a resumed run goes on with it.
   */
  async cleanup(options: CleanupOptions): Promise<void> {
    const p = this.p;
    const names = helperNames(p.table);
    const steps = cleanupSteps(this.plan.reverse === true, options);
    if (steps === null) return;
    if (steps.shadow) {
      await childKeysBack(this.pool, p); // the shadow cannot be dropped while they reference it
      await setKeysBack(this.pool, p);
    }
    // The window's prelock triggers served the swap only, and went with the original to the old table.
    if (options.cutOver && !this.plan.reverse) await this.reverseLog().dropPrelock();
    await this.changes.cleanup();
    await dropGate(this.pool, p.database, p.table, [p.old]);
    await dropSentry(this.pool, p.database, p.old);
    const drop: string[] = [];
    if (steps.shadow) drop.push(p.shadow);
    if (steps.old) drop.push(p.old);
    for (const name of drop) await this.pool.query(`DROP TABLE IF EXISTS ${qualified(p.database, name)}`);
    // The revert window's log has nothing to follow: its triggers went with the shadow, or, should the
    // tables have been swapped after all, they are on the table, and go before the log they write.
    // Nothing is removed from the new table ('table'): a run installs the capture only when its window
    // follows, and the way back's own cleanup removes it (PostgreSQL's side drops it there defensively).
    if (steps.reverseCapture === 'shadow') await this.reverseLog().uninstall();
    // The way back's `old` is the new table it kept once it swapped: marked while the checkpoint still says what it is.
    if (this.plan.reverse && (await this.swapped())) await markKeptByRevert(this.server.target, this.pool, p.database, p.old);
    // A revert window that follows keeps the run's probes, and so their heartbeat: the replicas' lag
    // is read from it until the window's end (dropped, it read as unmeasurable and held a revert for good).
    if (!steps.checkpoint) return;
    await dropOwnHelper(this.pool, p.database, names.heartbeat);
    // The checkpoint last: until it is gone, a crash in cleanup is resumed as one.
    await dropOwnHelper(this.pool, p.database, names.state);
    this.checkpointTable = false;
  }

  /** Refused while an interrupted run's RENAME still waits on the server: it may yet swap the tables. */
  async swapped(): Promise<boolean> {
    const pending = await pendingRename(this.pool, this.p);
    if (pending !== null) {
      throw new UserError(
        `the interrupted run's RENAME of ${this.p.database}.${this.p.table} is still waiting on the server (connection ${pending}) and may yet swap the tables: run again once it has ended`,
      );
    }
    return isSwapped(this.pool, this.p);
  }

  async tableReplaced(): Promise<boolean> {
    const p = this.p;
    if (p.identity === undefined || (await tableIdentity(this.pool, this.server.flavor, p.database, p.table, p.identity)) === p.identity) return false;
    return !(await this.swapped());
  }

  async saveCheckpoint(checkpoint: string): Promise<void> {
    const state = helperNames(this.p.table).state;
    if (!this.checkpointTable) {
      await createStateTable(this.pool, this.p.database, state);
      this.checkpointTable = true;
    }
    await writeState(this.pool, this.p.database, state, checkpoint);
  }

  async openProbes(replicas: string[], options: ProbeOptions = {}): Promise<Probes> {
    return openMysqlProbes(this.server.target, this.pool, this.p, replicas, await this.server.galeraMembers(), options.heartbeat);
  }

  revertRefusals(): string[] {
    if (this.plan.reverse) return ['this is already the way back of a revert window: it has no window of its own'];
    // Its capture and swap back hold LOCK TABLES, which wedges a cluster (server/galera-node.ts).
    if (this.server.galera) return ['a Galera cluster has no revert window yet: the way back would hold LOCK TABLES, which Galera does not replicate'];
    return revertRefusals(this.p);
  }

  proveReverse(anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison> {
    return proveReverse(this.pool, this.p, anchors, rows);
  }

  /** Idempotent (a run resumed before its cut-over makes only what is missing); no other session writes the shadow meanwhile. */
  async installReverseCapture(lockTimeoutMs: number): Promise<void> {
    await this.reverseLog().install(lockTimeoutMs);
  }

  async reversed(): Promise<Migration> {
    return this.server.resume(await buildReversePlan(this.pool, this.plan));
  }

  /**
   * On Galera every node is listed: a reader on any of them whose view predates the swap would read
   * the new table there (the RENAME aborts only transactions that hold the table).
   */
  async oldSnapshots(session?: Session): Promise<OldSnapshot[] | null> {
    let locked: LockedLook | undefined;
    if (session !== undefined) {
      if (!(session instanceof LockedSession)) throw new Error(`not a locked MySQL session: ${session.id}`);
      const gate = this.server.galera ? qualified(this.p.database, helperNames(this.p.table).gate) : undefined;
      // The first look under a lock may use another table's listing of the set, begun after the lock;
      // each later one needs a listing begun after the last look ended (it waits to see whether those found have gone).
      const since = this.lockedLooks.get(session) ?? session.lockedAt;
      locked = { session, since, gate };
    }
    const others = await this.otherNodes();
    const lists = await Promise.all([
      mysqlOldSnapshots(this.server.target, locked),
      ...others.map((node) => mysqlOldSnapshots(node.target, locked && { since: locked.since, gate: locked.gate }, node.name)),
    ]);
    if (session !== undefined) this.lockedLooks.set(session, performance.now());
    return lists.some((list) => list === null) ? null : lists.flatMap((list) => list ?? []);
  }

  async readyLockedLook(): Promise<void> {
    const others = await this.otherNodes();
    await Promise.all([this.server.target, ...others.map((node) => node.target)].map((target) => TrxList.of(target).quiet()));
  }

  /** The Galera nodes other than the connected one (which comes first); none off Galera. */
  private async otherNodes(): Promise<GaleraMember[]> {
    return ((await this.server.galeraMembers()) ?? []).slice(1);
  }
}
