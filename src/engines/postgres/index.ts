import { DEFAULT_CHUNK_TIME_MS } from '../../core/engine/defaults.js';
import type pg from 'pg';
import type { Backfill, BackfillRequest } from '../../core/engine/ports/backfill.js';
import type { ClaimSession, CatchUp, ChangeStream, CutoverResult, Engine, Migration, MigrationRequest, Plan } from '../../core/engine/types.js';
import type { AlterClassification, InPlaceStep, WorkWaits } from '../../core/engine/ports/in-place.js';
import type { DiskSpace, TableSize } from '../../core/engine/ports/sizing.js';
import type { TablePlacement } from '../../core/engine/ports/placement.js';
import { citusPlacement } from './schema/citus.js';
import { CitusNodes } from './citus/nodes.js';
import { CitusMigration, type CitusServer } from './citus/migration.js';
import { planCitus } from './citus/prepare.js';
import { nodeLeftovers } from './citus/cleanup.js';
import { classifyPgAlter } from './in-place/classify.js';
import { pgDiskSpace, pgTableSize, runPgStep } from './in-place/in-place.js';
import type { ComparisonRequest, RowComparison } from '../../core/engine/ports/comparison.js';
import type { Contraction, ContractRequest } from '../../core/engine/ports/contract.js';
import { UserError } from '../../core/engine/errors.js';
import { isBackfill, openCheckpoint } from '../../core/engine/state/checkpoint.js';
import { StateSealError } from '../../core/engine/state/state-seal.js';
import { isCertificateError } from '../../core/engine/connect/tls.js';
import { openClaim } from './server/claim.js';
import { openPgComparison } from './commands/compare.js';
import { preparePgContract, contractCapture } from './commands/contract.js';
import { preparePgRestore } from './commands/restore.js';
import type { RestoreTarget } from '../../core/engine/ports/restore.js';
import { dropStream } from './capture/logical/source.js';
import { SlotHub } from './capture/logical/hub.js';
import { setStreamsOf } from './capture/logical/set-stream.js';
import { PgTriggerLog } from './capture/trigger/log.js';
import { givenOwnerSql } from './capture/owner-function.js';
import { refuseOwnerCode } from './server/owner-code.js';
import { helperNames, slotName } from './server/helper-names.js';
import { isDiskFullPg, isTransientPgError } from './server/errors.js';
import { isTrue, parseTableName, qualified } from './server/sql.js';
import { openEnginePool } from './server/connect.js';
import { PgHelperTables } from './server/helper-store.js';
import { PostgresMigration } from './migration.js';
import { cutover } from './cutover/cutover.js';
import { streamTables, type CitusDetail, type PgDetail } from './schema/plan.js';
import { buildPlan } from './prepare/build-plan.js';
import { keptByRevert } from './schema/reverse-plan.js';
import { keptByRevertComment } from '../../core/engine/kept-by-revert.js';
import { preparePostgresBackfill } from './commands/backfill.js';
import { readState } from './server/state.js';
import { parsePgUrl, type PgTarget } from './server/target.js';
import { postgresTerms } from './server-terms.js';

export async function createPostgresEngine(url: string): Promise<Engine> {
  const targets = parsePgUrl(url, '--url');
  const { target, pool, database } = await openEnginePool(targets).catch((error: Error) => {
    throw new UserError(`cannot connect to PostgreSQL: ${isCertificateError(error) ? 'TLS: ' : ''}${error.message}`);
  });
  return new PostgresEngine(target, pool, database);
}

class PostgresEngine implements Engine, CitusServer {
  readonly kind = 'postgres' as const;
  readonly terms = postgresTerms;
  readonly chunkTimeMs = DEFAULT_CHUNK_TIME_MS;
  readonly streams = new Set<ChangeStream>();
  /** One per slot: a set's tables share theirs. */
  private readonly hubs = new Map<string, SlotHub>();
  readonly helperTables: PgHelperTables;
  /** The other nodes of a Citus cluster, reached when a distributed table is migrated. */
  readonly citusNodes: CitusNodes;

  constructor(
    readonly target: PgTarget,
    readonly pool: pg.Pool,
    readonly database: string,
  ) {
    this.helperTables = new PgHelperTables(pool);
    this.citusNodes = new CitusNodes(target);
  }

  qualify(table: string): string {
    const { schema, name } = parseTableName(table);
    return `${schema}.${name}`;
  }

  openClaim(table: string): Promise<ClaimSession> {
    return openClaim(this.target, this.qualify(table));
  }

  async classifyAlter(table: string, alter: string): Promise<AlterClassification> {
    const { schema, name } = parseTableName(table);
    // The classifier's probe and the native ALTER evaluate the table's code with our rights (a CHECK's
    // validation, an index rebuild), the ALTER's own included: refused before either.
    const exists = await this.pool.query('SELECT to_regclass($1) IS NOT NULL AS e', [qualified(schema, name)]);
    if (isTrue(exists.rows[0].e)) await refuseOwnerCode(this.pool, qualified(schema, name), [], { alter });
    return classifyPgAlter(this.pool, schema, name, alter);
  }

  runInPlaceStep(step: InPlaceStep, lockTimeoutMs: number, waits?: WorkWaits): Promise<void> {
    return runPgStep(this.pool, step, lockTimeoutMs, waits);
  }

  /** A distributed table's rows are in its shards: the shell the coordinator holds is empty. */
  async tableSize(table: string): Promise<TableSize> {
    const placement = await this.placement(table);
    if (placement.kind === 'distributed') return placement.size;
    const { schema, name } = parseTableName(table);
    return pgTableSize(this.pool, schema, name);
  }

  placement(table: string): Promise<TablePlacement> {
    const { schema, name } = parseTableName(table);
    return citusPlacement(this.pool, schema, name);
  }

  diskSpace(): Promise<DiskSpace> {
    return pgDiskSpace(this.pool, this.target.url);
  }

  async prepare(request: MigrationRequest): Promise<Migration> {
    const placement = await this.placement(request.table);
    if (placement.kind === 'distributed' && (placement.shape === 'hash' || placement.shape === 'reference'))
      return new CitusMigration(this, await planCitus(this.pool, request, placement), request);
    return new PostgresMigration(this, await buildPlan(this.pool, request), request);
  }

  jointCutover(parts: { migration: Migration; catchUp: CatchUp }[], lockTimeoutMs: number): Promise<CutoverResult> {
    const migrations = parts.map(({ migration }) => {
      if (!(migration instanceof PostgresMigration)) throw new Error('not a PostgreSQL migration');
      return migration;
    });
    // A set's ways back keep the new tables marked as a revert keeps one (the runs swap forward or back together).
    const kept = migrations[0].plan.reverse ? keptByRevertComment(new Date()) : null;
    return cutover(
      this.pool,
      migrations.map((m, i) => m.swapPart(parts[i].catchUp)),
      lockTimeoutMs,
      kept,
    );
  }

  prepareBackfill(request: BackfillRequest): Promise<Backfill> {
    return preparePostgresBackfill(this.pool, request);
  }

  /** The one place a plan's detail is taken for PostgreSQL's: it was made by buildPlan, here or in the run that saved it. */
  resume(plan: Plan): Migration {
    const detail = plan as Plan<PgDetail>;
    return detail.detail.citus ? new CitusMigration(this, detail, null) : new PostgresMigration(this, detail, null);
  }

  isTransient(error: unknown): boolean {
    return isTransientPgError(error);
  }

  isDiskFull(error: unknown): boolean {
    return isDiskFullPg(error);
  }

  async loadCheckpoint(table: string): Promise<string | null> {
    const { schema, name } = parseTableName(table);
    return readState(this.pool, schema, helperNames(schema, name).state);
  }

  /**
   * The old table only when asked: after a successful run it is the rollback copy. A revert window's
   * `__new` (the new table after a revert) is the user's data: never.
   */
  async cleanupLeftovers(table: string, options: { dropOld: boolean; dryRun?: boolean }): Promise<string[]> {
    const { schema, name } = parseTableName(table);
    const names = helperNames(schema, name);
    const dropped: string[] = [];
    const saved = await this.checkpointStream(table);
    // After a revert, `__new` is the new table, the user's data, not a dead run's shadow.
    const shadow = (await keptByRevert(this.pool, schema, names.shadow)) ? [] : [names.shadow];
    // The old table the dead run chose; without a checkpoint, the family's first name.
    const tables = [...shadow, names.state, names.heartbeat, ...(options.dropOld ? [saved?.old ?? names.old] : [])];
    for (const t of tables) {
      const { rows } = await this.pool.query('SELECT to_regclass($1) IS NOT NULL AS e', [qualified(schema, t)]);
      if (rows[0].e === 't') dropped.push(`${schema}.${t}`);
    }
    // A set's run follows its set's slot: named in its checkpoint, or, killed before that, found by its publication. The table's own is looked for too.
    // The slot by its name since slots carry the database's hash, and by the name a run of an older version gave it.
    const streams: { slot: string; publication: string }[] = [{ slot: slotName(names.slot, this.database), publication: names.publication }, names];
    for (const s of [saved, ...(await setStreamsOf(this.pool, schema, name))]) if (s && !streams.some((t) => t.slot === s.slot)) streams.push(s);
    for (const stream of streams) {
      const { rows: slots } = await this.pool.query(
        'SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained FROM pg_replication_slots WHERE slot_name = $1',
        [stream.slot],
      );
      const { rows: pubs } = await this.pool.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [stream.publication]);
      if (slots.length) dropped.push(`replication slot ${stream.slot} (retaining ${slots[0].retained ?? 'no'} of WAL)`);
      if (pubs.length) dropped.push(`publication ${stream.publication}`);
    }
    // A distributed table's stream is on the nodes that hold its shards.
    const onNodes = (await this.placement(table)).kind === 'distributed' ? await nodeLeftovers(this.pool, this.citusNodes, schema, name, saved?.citus) : null;
    if (onNodes) dropped.push(...onNodes.found);
    // The run's own capture, and a revert window's: on the new table, or still on the shadow when the run died before its swap.
    const captures = [
      new PgTriggerLog(this.pool, schema, name, []),
      new PgTriggerLog(this.pool, schema, name, [], names.reverseCapture),
      new PgTriggerLog(this.pool, schema, names.shadow, [], names.reverseCapture, name),
    ];
    for (const capture of captures) {
      const triggers = (await capture.ourTriggers(this.pool)).filter((t) => t.ours);
      const onTable = (t: { table: string }) => (t.table === name ? '' : ` on ${schema}.${t.table}`);
      dropped.push(...triggers.map((t) => `${schema}.${t.name}${onTable(t)} (capture trigger)`));
    }
    for (const capture of [names, names.reverseCapture]) {
      // Only a log of the migrating role's is dropped (another role's is refused, never removed).
      const { rows: logs } = await this.pool.query(
        'SELECT 1 FROM pg_class WHERE oid = to_regclass($1) AND relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)',
        [qualified(schema, capture.log)],
      );
      if (logs.length) dropped.push(`${schema}.${capture.log}`);
      const { rows: fns } = await this.pool.query(
        `SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = $1 AND n.nspname = $2 AND ${givenOwnerSql('p.proowner', '$3')}`,
        [capture.captureFunction, schema, qualified(schema, name)],
      );
      if (fns.length) dropped.push(`${schema}.${capture.captureFunction}() (capture function)`);
    }
    // A contract killed while it filled its backup leaves the capture that keeps the backup level.
    const backup = await contractCapture(this.pool, schema, name);
    if (backup) dropped.push(`${schema}.${name}.shadowcut_backup_capture (a contract's backup capture) and ${backup.fn}()`);
    if (options.dryRun) return dropped;
    // The triggers first: until they are gone every write to the table goes through them.
    for (const capture of captures) await capture.uninstall();
    if (backup) await backup.drop();
    for (const t of tables) await this.pool.query(`DROP TABLE IF EXISTS ${qualified(schema, t)}`);
    for (const stream of streams) await dropStream(this.pool, stream.slot, stream.publication);
    await onNodes?.drop();
    return dropped;
  }

  /** The slot, publication and old table a table's checkpoint names, if it has one (a way back's old table is its shadow). */
  private async checkpointStream(table: string): Promise<{ slot: string; publication: string; old: string; citus?: CitusDetail } | null> {
    const text = await this.loadCheckpoint(table);
    if (text === null) return null;
    try {
      // This table's, and not one put back after its run (openCheckpoint): its plan names the slot and old table to drop.
      const checkpoint = openCheckpoint(text, this, table);
      if (isBackfill(checkpoint)) return null;
      const plan = checkpoint.plan as Plan<PgDetail>;
      const { slot, publication, old, shadow, citus } = plan.detail;
      return { slot, publication, old: plan.reverse ? shadow : old, citus };
    } catch (error) {
      // A checkpoint another account changed names nothing to drop: refused in one line, not passed over.
      if (error instanceof StateSealError) throw error;
      return null; // A checkpoint this version cannot read names no stream of a set.
    }
  }

  openComparison(request: ComparisonRequest): Promise<RowComparison> {
    return openPgComparison(this.pool, request);
  }

  prepareContract(request: ContractRequest): Promise<Contraction> {
    return preparePgContract(this.pool, request);
  }

  prepareRestore(request: { table: string; backup: string }): Promise<RestoreTarget> {
    return preparePgRestore(this.pool, request);
  }

  slotHub(d: PgDetail): SlotHub {
    let hub = this.hubs.get(d.slot);
    if (!hub) this.hubs.set(d.slot, (hub = new SlotHub(this.target, this.pool, d.slot, d.publication, streamTables(d))));
    return hub;
  }

  async close(): Promise<void> {
    await this.stopStreams();
    await this.citusNodes.close();
    await this.pool.end();
  }

  private async stopStreams(): Promise<void> {
    const streams = [...this.streams];
    this.streams.clear();
    await Promise.all(streams.map((s) => s.stop()));
  }
}
