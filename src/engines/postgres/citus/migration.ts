import type { CheckOptions, SampleProbe } from '../../../core/engine/ports/preflight.js';
import type {
  CatchUp,
  CheckResult,
  ConsistentView,
  CutoverOptions,
  CutoverResult,
  Key,
  Migration,
  MigrationRequest,
  Plan,
  ProbeOptions,
  Probes,
  Session,
} from '../../../core/engine/types.js';
import type { CleanupOptions } from '../../../core/engine/ports/cleanup.js';
import { keptByRevertComment } from '../../../core/engine/kept-by-revert.js';
import { cleanupSteps } from '../../../core/engine/cleanup-steps.js';
import { UserError } from '../../../core/engine/errors.js';
import { planSides } from '../copy/checksum.js';
import { openPgSampleProbe } from '../copy/sample-probe.js';
import { cutover } from '../cutover/cutover.js';
import { PostgresMigration, type PgServer } from '../migration.js';
import type { CitusPgDetail, PgDetail } from '../schema/plan.js';
import { isTrue, qualified } from '../server/sql.js';
import { PgSession } from '../server/connect.js';
import { ShardBoundary } from './boundary.js';
import { citusChecks, distributeLike, NODE_STREAM_CHECKS } from './checks.js';
import { expectPlacements } from './detail.js';
import { nodeStandbyLag } from './lag.js';
import type { CitusNodes } from './nodes.js';
import { dropReverseStreams, installReverseStreams, reverseCitusPlan } from './revert.js';
import { CitusSource } from './stream.js';
import { citusDifferingKeys, openCitusView, preparedCommitted } from './view.js';

/** What a Citus table's migration needs of the engine: the coordinator's, and the nodes that hold the shards. */
export interface CitusServer extends PgServer {
  citusNodes: CitusNodes;
}

/**
 * A hash-distributed table's migration, run through the coordinator so that the work happens where
 * the shards are: the shadow is distributed by the same column and co-located with the table (the
 * same shard count, ranges and placements), so each chunk's `INSERT ... SELECT`, each apply and each
 * checksum is pushed down by Citus shard by shard, in parallel on the nodes, and no row passes
 * through the coordinator. What the coordinator cannot see is followed on the nodes: the changes
 * (stream.ts) and the commits still in flight at the swap (view.ts). The swap is the coordinator's
 * one distributed transaction: every node renames its shards in it, or none does.
 */
export class CitusMigration extends PostgresMigration {
  private readonly nodes: CitusNodes;
  private readonly citus: CitusPgDetail['citus'];
  private readonly boundary: ShardBoundary;

  constructor(
    private readonly citusServer: CitusServer,
    plan: Plan<PgDetail>,
    request: MigrationRequest | null,
  ) {
    const source = new CitusSource(citusServer.citusNodes, plan.detail as CitusPgDetail);
    super(citusServer, plan, request, { changes: source, settle: () => source.settle() });
    this.nodes = citusServer.citusNodes;
    this.citus = (plan.detail as CitusPgDetail).citus;
    this.boundary = new ShardBoundary(this.nodes, this.citus.nodes, this.copier.originalKeys, this.copier.original);
  }

  /** Asked of the shards on their nodes rather than through the coordinator (boundary.ts). */
  override nextBoundary(after: Key | null, rows: number): Promise<Key | null> {
    return this.boundary.next(this.pool, after, rows);
  }

  /** The sample the plan times, made as the run makes its copy: the probe distributed beside the table, its boundaries asked of the nodes. */
  override openSampleProbe(): Promise<SampleProbe> {
    return openPgSampleProbe(this.pool, this.d, this.plan.alter, {
      distribute: (client, name) => distributeLike(client, this.d, name, this.citus),
      nextBoundary: (after, rows) => this.boundary.next(this.pool, after, rows),
    });
  }

  /** The coordinator's checks, but for the change stream's: it runs on the nodes, which are checked instead. */
  override async checks(options: CheckOptions): Promise<CheckResult[]> {
    const own = (await super.checks(options)).filter((c) => !NODE_STREAM_CHECKS.includes(c.name));
    return [...own, ...(await citusChecks(this.pool, this.nodes, this.plan, this.request, options.resuming))];
  }

  /**
   * The shadow as the table's twin: distributed by the same column, in the same co-location group, so
   * each of its shards sits beside the table's; a reference table's is a reference table, with a
   * placement on every node that holds one of the table.
   */
  override async createShadow(): Promise<void> {
    await super.createShadow();
    await distributeLike(this.pool, this.d, this.d.shadow, this.citus);
  }

  /** A resumed run's shadow must still be the table's co-located twin (its shards beside the table's). */
  override async resumeShadow(): Promise<void> {
    const d = this.d;
    const { rows } = await this.pool.query(
      `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = to_regclass($1) AND colocationid = $2 AND partmethod = $3) AS twin`,
      [qualified(d.schema, d.shadow), this.citus.colocationId, this.citus.column === null ? 'n' : 'h'],
    );
    if (!isTrue(rows[0].twin)) {
      throw new UserError(`${qualified(d.schema, d.shadow)} is not distributed beside ${qualified(d.schema, d.name)}; run shadowcut cleanup and start again`);
    }
    await super.resumeShadow();
  }

  override consistentView(catchUp: CatchUp, lockTimeoutMs: number): Promise<ConsistentView> {
    return openCitusView(this.pool, this.copier, catchUp, lockTimeoutMs, (after, rows) => this.boundary.next(this.pool, after, rows));
  }

  override compareKeys(keys: Key[], session: Session): Promise<Key[]> {
    if (!(session instanceof PgSession)) throw new Error(`not a PostgreSQL session: ${session.id}`);
    return citusDifferingKeys(session.client, planSides(this.copier), keys);
  }

  /**
   * The coordinator's swap (cutover/cutover.ts) in one distributed transaction: Citus renames every
   * shard on its node within it and commits them in two phases, so no query sees some shards swapped
   * and others not. Sequential: DDL after a parallel multi-shard statement in one transaction is
   * refused by Citus, and the catch-up under the lock is small. Once locked, the shards must not have
   * moved, and every write still committing on a node must have committed there (view.ts).
   */
  override cutover(options: CutoverOptions): Promise<CutoverResult> {
    const table = qualified(this.d.schema, this.d.name);
    const kept = this.plan.reverse ? keptByRevertComment(new Date()) : null;
    return cutover(this.pool, [this.swapPart(options.catchUp)], options.lockTimeoutMs, kept, {
      settings: [`SET LOCAL citus.multi_shard_modify_mode = 'sequential'`],
      locked: async (client) => {
        await expectPlacements(client, table, this.citus);
        await preparedCommitted(this.nodes, [...this.citus.nodes, ...(this.citus.replicas ?? [])], options.lockTimeoutMs);
      },
    });
  }

  /** The coordinator's probes, with the lag of every node's standbys read on each node (lag.ts). */
  override async openProbes(replicas: string[], options: ProbeOptions = {}): Promise<Probes> {
    const probes = await super.openProbes(replicas, options);
    return {
      ...probes,
      replicaLag: async () => [...(await probes.replicaLag()), ...(await nodeStandbyLag(this.nodes, [...this.citus.nodes, ...(this.citus.replicas ?? [])]))],
    };
  }

  /** Streams on the nodes instead of triggers (revert.ts), made before the swap. */
  override installReverseCapture(): Promise<void> {
    return installReverseStreams(this.pool, this.nodes, this.d);
  }

  override async reversed(): Promise<Migration> {
    if (this.plan.reverse) throw new Error('the way back has no way back of its own');
    return new CitusMigration(this.citusServer, await reverseCitusPlan(this.pool, this.plan), null);
  }

  /** The PostgreSQL cleanup, and the way back's streams on the nodes wherever it takes the revert window's capture away. */
  override async cleanup(options: CleanupOptions): Promise<void> {
    await super.cleanup(options);
    if (cleanupSteps(this.plan.reverse === true, options)?.reverseCapture) await dropReverseStreams(this.nodes, this.citus, this.d);
  }
}
