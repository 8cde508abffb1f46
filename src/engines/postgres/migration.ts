import type pg from 'pg';
import type { CheckOptions, SampleProbe } from '../../core/engine/ports/preflight.js';
import type { AfterCopy } from '../../core/engine/ports/copy.js';
import type { KeylessShadow } from '../../core/engine/ports/keyless-shadow.js';
import { openPgSampleProbe } from './copy/sample-probe.js';
import { runChecks } from '../../core/engine/checks/check.js';
import { UniqueViolationError, UserError } from '../../core/engine/errors.js';
import type {
  CatchUp,
  ChangeStream,
  CheckedCopy,
  CheckResult,
  ConsistentView,
  CutoverOptions,
  CutoverResult,
  LockProbe,
  Key,
  KeyRange,
  Migration,
  MigrationRequest,
  OldSnapshot,
  Plan,
  ProbeComparison,
  ProbeOptions,
  Probes,
  Session,
} from '../../core/engine/types.js';
import { differingKeys, openConsistentView, planSides, rangeCheck } from './copy/checksum.js';
import { pgChecks } from './checks/index.js';
import { cleanup } from './commands/cleanup.js';
import { cleanupSteps } from '../../core/engine/cleanup-steps.js';
import type { CleanupOptions } from '../../core/engine/ports/cleanup.js';
import { errorCode } from './server/errors.js';
import { helperNames } from './server/helper-names.js';
import { inTransaction } from './server/transactions.js';
import { PgSession, type Client } from './server/connect.js';
import { qualified } from './server/sql.js';
import { Copier } from './copy/copy.js';
import { cutover, type SwapPart } from './cutover/cutover.js';
import { pgLockProbe } from './cutover/lock-probe.js';
import { pgOldSnapshots } from './cutover/old-snapshots.js';
import { inspectTable } from './schema/inspect.js';
import { compareWithAlter, proveReverse } from './copy/mapping-proof.js';
import { indexesAsPlanned, shadowTreeOf, type PgDetail } from './schema/plan.js';
import { expectPartitionTree } from './schema/partitions.js';
import { openPostgresProbes } from './throttle/probes.js';
import { autovacuumOff } from './server/autovacuum.js';
import { buildShadow } from './schema/shadow.js';
import { buildIndex } from './copy/deferred-indexes.js';
import { dropOwnHelper, helperTransaction } from './server/helper-tables.js';
import { checkResumedShadow } from './schema/resumed-shadow.js';
import { createStateTable, writeState } from './server/state.js';
import { LogicalSource } from './capture/logical/source.js';
import type { SlotHub } from './capture/logical/hub.js';
import { PgTriggerLog, type CaptureNames } from './capture/trigger/log.js';
import { buildReversePlan, reverseRefusals } from './schema/reverse-plan.js';
import { keptByRevertComment } from '../../core/engine/kept-by-revert.js';
import { TriggerSource } from '../../core/engine/capture/trigger-source.js';
import type { ChangeSource } from '../../core/engine/ports/change-source.js';
import type { PgTarget } from './server/target.js';

/** What every migration on one server shares; the engine stops the streams left open when it closes. */
export interface PgServer {
  target: PgTarget;
  pool: pg.Pool;
  streams: Set<ChangeStream>;
  /** The reader of the table's slot, shared with the tables of its set. */
  slotHub(d: PgDetail): SlotHub;
}

/**
 * A change source other than the server's own (a Citus table's, followed on the nodes that hold its
 * shards), with what an apply must wait for before it reads the table (capture/logical/visibility.ts).
 */
export interface OtherCapture {
  changes: ChangeSource;
  settle(): Promise<void>;
}

/** One table's migration on PostgreSQL: the plan, and the copier made from it. */
export class PostgresMigration implements Migration {
  protected readonly copier: Copier;
  protected readonly d: PgDetail;
  readonly changes: ChangeSource;
  /** Set in trigger mode: the cut-over drops its triggers in the swap's transaction. */
  private readonly triggerLog: PgTriggerLog | null;
  private checkpointTable = false;
  private check?: (client: Client, range: KeyRange) => Promise<boolean>;

  constructor(
    protected readonly server: PgServer,
    readonly plan: Plan<PgDetail>,
    /** What `prepare` was asked; null for a resumed run. */
    protected readonly request: MigrationRequest | null,
    capture?: OtherCapture,
  ) {
    this.d = plan.detail;
    this.copier = new Copier(this.d, server.pool, plan.reverse === true, capture?.settle);
    // A plan saved before trigger capture existed has no `capture`: it ran on the stream. The way
    // back's is the revert window's capture, installed on the shadow before the swap.
    if (capture) {
      this.triggerLog = null;
      this.changes = capture.changes;
    } else if (plan.reverse) {
      this.triggerLog = new PgTriggerLog(server.pool, this.d.schema, this.d.name, this.d.originalKey, this.reverseNames);
      this.changes = new TriggerSource(this.triggerLog);
    } else if (plan.capture?.kind === 'trigger') {
      this.triggerLog = new PgTriggerLog(server.pool, this.d.schema, this.d.name, this.d.originalKey);
      this.changes = new TriggerSource(this.triggerLog);
    } else {
      this.triggerLog = null;
      this.changes = new LogicalSource(server.slotHub(this.d), server.pool, this.d, this.copier.gate, server.streams);
    }
  }

  protected get pool(): pg.Pool {
    return this.server.pool;
  }

  private get reverseNames(): CaptureNames {
    return helperNames(this.d.schema, this.d.name).reverseCapture;
  }

  /** A forward run's revert window capture, on `table`: the shadow before the swap, the table after it. */
  private reverseCapture(table: string): PgTriggerLog {
    return new PgTriggerLog(this.pool, this.d.schema, table, this.d.shadowKey, this.reverseNames, this.d.name);
  }

  async checks(options: CheckOptions): Promise<CheckResult[]> {
    const d = this.d;
    const table = await inspectTable(this.pool, d.schema, d.name);
    const capture = this.triggerLog ? 'trigger' : 'stream';
    return runChecks(pgChecks, {
      pool: this.pool,
      table,
      detail: d,
      resuming: options.resuming,
      discardUnsaved: options.discardUnsaved,
      request: this.request,
      capture,
    });
  }

  async compareWithAlter(anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison> {
    const d = this.d;
    return compareWithAlter(this.pool, await inspectTable(this.pool, d.schema, d.name), d, this.plan.alter, anchors, rows);
  }

  openSampleProbe(): Promise<SampleProbe> {
    return openPgSampleProbe(this.pool, this.d, this.plan.alter);
  }

  async createShadow(): Promise<void> {
    const d = this.d;
    const t = await inspectTable(this.pool, d.schema, d.name);
    await inTransaction(this.pool, async (client) => {
      await expectPartitionTree(client, d);
      const layout = await buildShadow(
        client,
        t,
        this.plan.alter,
        d.shadow,
        d.keyIndex ? 'all' : d.deferIndexes ? 'secondary' : 'none',
        shadowTreeOf(d, (p) => p.shadow),
      );
      if (!indexesAsPlanned(layout, d)) {
        throw new UserError(
          `the indexes of ${qualified(d.schema, d.shadow)} came out named otherwise than planned (was an index or table created meanwhile?); start again`,
        );
      }
      if (d.autovacuum) await autovacuumOff(client, qualified(d.schema, d.shadow));
    });
    this.copier.keyless = d.keyIndex !== undefined;
  }

  /** While the shadow has no key, no change can be applied to it (copy/deferred-indexes.ts): they wait for `build`, right after the copy or before a resumed run writes anything. */
  get keylessShadow(): KeylessShadow {
    return { holding: this.copier.keyless, build: () => this.buildKey() };
  }

  private buildKey(): Promise<void> {
    return this.copier.buildKey(this.pool);
  }

  /** The way back's "shadow" is the old table, the table owner's: only a forward run's own shadow is checked. */
  async resumeShadow(): Promise<void> {
    if (this.plan.reverse) return;
    await helperTransaction(this.pool, (client) => checkResumedShadow(client, this.d));
    // The dead run's last chunks may be in the heap past its checkpoint: with the key, copying them
    // again replaces them (their keys are unique, so the build finds no duplicate).
    await this.buildKey();
  }

  nextBoundary(after: Key | null, rows: number): Promise<Key | null> {
    return this.copier.nextBoundary(this.pool, after, rows);
  }

  copyRange(range: KeyRange): Promise<number> {
    return this.copier.copyRange(this.pool, range);
  }

  async copyAndChecksum(range: KeyRange): Promise<CheckedCopy> {
    // Each chunk's checksum reads the shadow's range: by its key, not the whole heap.
    await this.buildKey();
    this.check ??= rangeCheck(this.copier);
    const check = this.check;
    return this.copier.copyChecked(this.pool, range, (client) => check(client, range));
  }

  applyKeys(keys: Key[], session?: Session): Promise<void> {
    if (session !== undefined && !(session instanceof PgSession)) throw new Error(`not a PostgreSQL session: ${session.id}`);
    return this.copier.applyKeys(this.pool, keys, session);
  }

  /**
   * The key first, where the copy filled a bare heap: until then no change can be applied. Then the
   * secondary indexes, built once on the full shadow instead of maintained row by row during the
   * copy. Anything but a plain index (a unique one, a constraint: unique, exclusion) must not meet a
   * value that only looks duplicated because a change moving it is still unapplied: the shadow is
   * levelled first. Otherwise the stream catches up (decoding the copy's own WAL) while the indexes
   * are built, and the verification levels it.
   */
  async afterCopy(copied: AfterCopy): Promise<void> {
    await copied.transient('key build', () => this.buildKey());
    if (this.d.indexes.some((index) => !/^CREATE INDEX /.test(index.create))) await copied.catchUp();
    await copied.transient('index build', () => copied.uniqueSafe(() => this.buildIndexes()));
  }

  private async buildIndexes(): Promise<void> {
    const d = this.d;
    await this.buildKey();
    for (const index of d.indexes) {
      // Idempotent, so the runner can retry after a unique conflict that catching up resolves.
      await buildIndex(this.pool, d.schema, d.shadow, index).catch((error) => {
        throw errorCode(error) === '23505' ? new UniqueViolationError((error as Error).message) : error;
      });
    }
    // The new table should not reach the planner without statistics.
    await this.pool.query(`ANALYZE ${qualified(d.schema, d.shadow)}`);
  }

  consistentView(catchUp: CatchUp, lockTimeoutMs: number): Promise<ConsistentView> {
    return openConsistentView(this.pool, this.copier, catchUp, lockTimeoutMs);
  }

  compareKeys(keys: Key[], session: Session): Promise<Key[]> {
    if (!(session instanceof PgSession)) throw new Error(`not a PostgreSQL session: ${session.id}`);
    return differingKeys(session.client, planSides(this.copier), keys);
  }

  cutover(options: CutoverOptions): Promise<CutoverResult> {
    const kept = this.plan.reverse ? keptByRevertComment(new Date()) : null;
    return cutover(this.pool, [this.swapPart(options.catchUp)], options.lockTimeoutMs, kept);
  }

  /** This table's part of a swap, alone or with a set's others (the engine's `jointCutover`). */
  swapPart(catchUp: CatchUp): SwapPart {
    return { copier: this.copier, catchUp, triggers: this.triggerLog };
  }

  openLockProbe(): Promise<LockProbe> {
    return Promise.resolve(pgLockProbe(this.pool, this.d.schema, this.d.name));
  }

  /**
   * What goes is core's decision (core/engine/cleanup-steps.ts); this carries it out. The way back's
   * drops no table (its shadow is the old table, its `old` the new one), and without `cutOver` only
   * stops its streams, leaving triggers, log and checkpoint for `--resume`.
   */
  async cleanup(options: CleanupOptions): Promise<void> {
    // The streams this migration opened, and only those: a set's other tables follow theirs on the same engine.
    await (this.changes as { stopOpened?: () => Promise<void> }).stopOpened?.();
    const d = this.d;
    const steps = cleanupSteps(this.plan.reverse === true, options);
    if (steps === null) return;
    // A set's slot is dropped by its last member to leave it; one discarding its unsaved setup is not leaving.
    if (!(options.keepSetStream && this.changes instanceof LogicalSource)) await this.changes.cleanup();
    // After a swap (the way back's too) the keys it re-added NOT VALID are checked, unlocked; without one the shadow goes.
    await cleanup(this.pool, d, steps);
    if (steps.reverseCapture === 'shadow') await this.reverseCapture(d.shadow).uninstall();
    else if (steps.reverseCapture === 'table') await this.reverseCapture(d.name).uninstall();
    const names = helperNames(d.schema, d.name);
    // A revert window that follows keeps the run's probes, and so their heartbeat (see the MySQL side).
    if (steps.checkpoint) {
      await dropOwnHelper(this.pool, d.schema, names.heartbeat);
      await dropOwnHelper(this.pool, d.schema, names.state);
    }
    this.checkpointTable = false;
  }

  async swapped(): Promise<boolean> {
    const d = this.d;
    const { rows } = await this.pool.query('SELECT to_regclass($1) IS NULL AND to_regclass($2) IS NOT NULL AS done', [
      qualified(d.schema, d.shadow),
      qualified(d.schema, d.old),
    ]);
    return rows[0].done === 't';
  }

  async tableReplaced(): Promise<boolean> {
    const d = this.d;
    const { rows } = await this.pool.query('SELECT to_regclass($1)::oid AS oid', [qualified(d.schema, d.name)]);
    return String(rows[0].oid) !== d.oid && !(await this.swapped());
  }

  async saveCheckpoint(checkpoint: string): Promise<void> {
    const d = this.d;
    const state = helperNames(d.schema, d.name).state;
    // Once per run, not at every save (it is DDL, however cheap when the table exists).
    if (!this.checkpointTable) {
      await createStateTable(this.pool, d.schema, state);
      this.checkpointTable = true;
    }
    await writeState(this.pool, d.schema, state, checkpoint);
  }

  openProbes(replicas: string[], options: ProbeOptions = {}): Promise<Probes> {
    return openPostgresProbes(this.pool, this.d, replicas, options.heartbeat);
  }

  revertRefusals(): string[] {
    if (this.plan.reverse) return ['this is the way back of a revert window, which has none of its own'];
    return reverseRefusals(this.d);
  }

  async proveReverse(anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison> {
    const d = this.d;
    return proveReverse(this.pool, await inspectTable(this.pool, d.schema, d.name), d, this.plan.alter, anchors, rows);
  }

  /** On the shadow, keyed by its key; the triggers go with it at the swap (they follow the relation, not its name). */
  async installReverseCapture(lockTimeoutMs: number): Promise<void> {
    const capture = this.reverseCapture(this.d.shadow);
    if (!(await capture.isInstalled())) await capture.install(lockTimeoutMs);
  }

  async reversed(): Promise<Migration> {
    if (this.plan.reverse) throw new Error('the way back has no way back of its own');
    return new PostgresMigration(this.server, await buildReversePlan(this.pool, this.plan), null);
  }

  oldSnapshots(session?: Session): Promise<OldSnapshot[]> {
    if (session === undefined) return pgOldSnapshots(this.pool, null);
    if (!(session instanceof PgSession)) throw new Error(`not a PostgreSQL session: ${session.id}`);
    return pgOldSnapshots(session.client, session.client.processID);
  }
}
