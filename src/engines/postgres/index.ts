import type pg from 'pg';
import type { ClaimSession } from '../../core/claim.js';
import { UniqueViolationError, UserError } from '../../core/errors.js';
import type {
  CatchUp,
  ChangeSink,
  ChangeStream,
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
import { differingKeys, openConsistentView } from './checksum.js';
import { runChecks } from './checks.js';
import { openClaim } from './claim.js';
import { cleanup, dropStream } from './cleanup.js';
import { comparePositions, errorCode, helperNames, isTransientPgError, inTransaction, openEnginePool, parseTableName, PgSession, qualified } from './connect.js';
import { Copier } from './copy.js';
import { cutover } from './cutover.js';
import { definitionOf, inspectTable } from './inspect.js';
import { compareWithAlter } from './mapping-proof.js';
import { detailOf, type PgDetail } from './plan.js';
import { buildShadow } from './shadow.js';
import { openPostgresProbes } from './probes.js';
import { createSlot, fence, openStream } from './stream.js';

export async function createPostgresEngine(url: string): Promise<Engine> {
  const pool = await openEnginePool(url).catch((error: Error) => {
    throw new UserError(`cannot connect to PostgreSQL: ${error.message}`);
  });
  return new PostgresEngine(url, pool);
}

class PostgresEngine implements Engine {
  readonly kind = 'postgres' as const;
  private readonly copiers = new WeakMap<object, Copier>();
  private streams = new Set<ChangeStream>();
  private readonly checkpointTables = new Set<string>();

  constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
  ) {}

  qualify(table: string): string {
    const { schema, name } = parseTableName(table);
    return `${schema}.${name}`;
  }

  openClaim(table: string): Promise<ClaimSession> {
    return openClaim(this.url, this.qualify(table));
  }

  /**
   * Builds the shadow in a transaction that is rolled back: a bad ALTER is reported by the server
   * itself, the column mapping comes from the catalog, and nothing is left behind (invariant 7).
   */
  async prepare(request: MigrationRequest): Promise<Plan> {
    if (request.discardForeignKeys) {
      throw new UserError('--discard-foreign-keys is for MySQL/MariaDB; on PostgreSQL foreign keys are carried over to the new table');
    }
    if (request.triggers) {
      throw new UserError('--include-triggers is for MySQL/MariaDB; on PostgreSQL triggers are always carried over to the new table');
    }
    const { schema, name } = parseTableName(request.table);
    const names = helperNames(schema, name);
    const t = await inspectTable(this.pool, schema, name);
    if (!t.key) throw new UserError(t.noKeyReason);
    const shadow = qualified(schema, names.shadow);
    const state = await this.pool.query(`SELECT to_regclass($1) IS NOT NULL AS e`, [qualified(schema, names.state)]);
    if (state.rows[0].e === 't') {
      const slot = await this.pool.query(
        'SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained FROM pg_replication_slots WHERE slot_name = $1',
        [names.slot],
      );
      const retains = slot.rows.length ? ` (its replication slot retains ${slot.rows[0].retained ?? 'no'} of WAL)` : '';
      throw new UserError(
        `an interrupted run on ${schema}.${name} left a checkpoint${retains}: continue it with --resume, or remove it with "shadowcut cleanup --url ... --table ${request.table}"`,
      );
    }
    const exists = await this.pool.query(`SELECT to_regclass($1) IS NOT NULL AS e`, [shadow]);
    if (exists.rows[0].e === 't') {
      throw new UserError(`${shadow} is left over from an earlier run; if no run is active, run "shadowcut cleanup --url ... --table ${request.table}" or DROP TABLE ${shadow}`);
    }
    const layout = await this.rolledBack((client) => buildShadow(client, t, request.alter, names.shadow, false));
    const fks = await this.pool.query(
      `SELECT conname FROM pg_constraint WHERE contype = 'f' AND convalidated AND (conrelid = $1 OR confrelid = $1)`,
      [t.oid],
    );
    const detail: PgDetail = {
      oid: t.oid,
      schema,
      name,
      shadow: names.shadow,
      old: names.old,
      slot: names.slot,
      publication: names.publication,
      originalKey: t.key.columns,
      shadowKey: layout.shadowKey,
      columns: layout.columns,
      // pgoutput leaves generated columns out of relation messages.
      streamColumns: t.columns.filter((c) => c.generated === '').map((c) => ({ name: c.name, typeOid: c.typeOid, typeMod: c.typeMod })),
      definition: await definitionOf(this.pool, t.oid),
      indexes: layout.indexes,
      // Unlike a MySQL ALTER, a PostgreSQL index build is WAL that standbys replay as it comes:
      // deferring it holds up no one, so `auto` means on.
      deferIndexes: request.deferIndexes !== 'off',
      indexRenames: layout.indexRenames,
      changedColumns: layout.changedColumns,
      validatedForeignKeys: fks.rows.map((r) => r.conname),
    };
    return {
      table: `${schema}.${name}`,
      shadowTable: `${schema}.${names.shadow}`,
      oldTable: `${schema}.${names.old}`,
      alter: request.alter,
      keyColumns: t.key.columns,
      estimatedRows: t.estimatedRows,
      summary: [
        ...layout.summary,
        ...(layout.indexes.length ? [`secondary indexes ${detail.deferIndexes ? 'built after the copy' : 'maintained during the copy'}: ${layout.indexes.map((i) => i.shadow).join(', ')}`] : []),
      ],
      detail,
    };
  }

  async checks(plan: Plan, options: { resuming: boolean }): Promise<CheckResult[]> {
    const d = detailOf(plan);
    return runChecks(this.pool, await inspectTable(this.pool, d.schema, d.name), d, options.resuming);
  }

  async compareWithAlter(plan: Plan, anchors: Key[] | null, rows: number): Promise<ProbeComparison> {
    const d = detailOf(plan);
    return compareWithAlter(this.pool, await inspectTable(this.pool, d.schema, d.name), d, plan.alter, anchors, rows);
  }

  async createShadow(plan: Plan): Promise<void> {
    const d = detailOf(plan);
    const t = await inspectTable(this.pool, d.schema, d.name);
    await inTransaction(this.pool, (client) => buildShadow(client, t, plan.alter, d.shadow, d.deferIndexes));
  }

  async openChanges(plan: Plan, sink: ChangeSink, from?: Position): Promise<ChangeStream> {
    const d = detailOf(plan);
    const start = from ?? (await createSlot(this.pool, d));
    const stream = await openStream(this.url, d, sink, start, () => fence(this.pool), this.copier(plan).gate);
    this.streams.add(stream);
    return stream;
  }

  nextBoundary(plan: Plan, after: Key | null, rows: number): Promise<Key | null> {
    return this.copier(plan).nextBoundary(this.pool, after, rows);
  }

  copyRange(plan: Plan, range: KeyRange): Promise<number> {
    return this.copier(plan).copyRange(this.pool, range);
  }

  applyKeys(plan: Plan, keys: Key[], session?: Session): Promise<void> {
    if (session !== undefined && !(session instanceof PgSession)) throw new Error(`not a PostgreSQL session: ${session.id}`);
    return this.copier(plan).applyKeys(this.pool, keys, session);
  }

  /** Secondary indexes are built once, on the full shadow, instead of maintained row by row during the copy. */
  async afterCopy(plan: Plan): Promise<void> {
    const d = detailOf(plan);
    for (const index of d.indexes) {
      // Idempotent, so the runner can retry after a unique conflict that catching up resolves.
      const { rows } = await this.pool.query('SELECT to_regclass($1) IS NOT NULL AS e', [qualified(d.schema, index.shadow)]);
      if (rows[0].e === 't') continue;
      await this.pool.query(index.create).catch((error) => {
        throw errorCode(error) === '23505' ? new UniqueViolationError((error as Error).message) : error;
      });
    }
    // The new table should not reach the planner without statistics.
    await this.pool.query(`ANALYZE ${qualified(d.schema, d.shadow)}`);
  }

  consistentView(plan: Plan, catchUp: CatchUp, lockTimeoutMs: number): Promise<ConsistentView> {
    return openConsistentView(this.pool, this.copier(plan), catchUp, lockTimeoutMs);
  }

  compareKeys(plan: Plan, keys: Key[], session: Session): Promise<Key[]> {
    if (!(session instanceof PgSession)) throw new Error(`not a PostgreSQL session: ${session.id}`);
    return differingKeys(session.client, this.copier(plan), keys);
  }

  cutover(plan: Plan, options: CutoverOptions): Promise<CutoverResult> {
    return cutover(this.pool, this.copier(plan), options);
  }

  async cleanup(plan: Plan, options: { dropOld: boolean; cutOver: boolean }): Promise<void> {
    await this.stopStreams();
    const d = detailOf(plan);
    await cleanup(this.pool, d, options);
    const names = helperNames(d.schema, d.name);
    for (const t of [names.state, names.heartbeat]) await this.pool.query(`DROP TABLE IF EXISTS ${qualified(d.schema, t)}`);
    this.checkpointTables.delete(qualified(d.schema, names.state));
  }

  async swapped(plan: Plan): Promise<boolean> {
    const d = detailOf(plan);
    const { rows } = await this.pool.query('SELECT to_regclass($1) IS NULL AND to_regclass($2) IS NOT NULL AS done', [
      qualified(d.schema, d.shadow),
      qualified(d.schema, d.old),
    ]);
    return rows[0].done === 't';
  }

  isTransient(error: unknown): boolean {
    return isTransientPgError(error);
  }

  async saveCheckpoint(plan: Plan, checkpoint: string): Promise<void> {
    const d = detailOf(plan);
    const table = qualified(d.schema, helperNames(d.schema, d.name).state);
    // Once per run, not at every save (it is DDL, however cheap when the table exists).
    if (!this.checkpointTables.has(table)) {
      await this.pool.query(`CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, checkpoint text NOT NULL)`);
      this.checkpointTables.add(table);
    }
    await this.pool.query(`INSERT INTO ${table} VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET checkpoint = EXCLUDED.checkpoint`, [checkpoint]);
  }

  async loadCheckpoint(table: string): Promise<string | null> {
    const { schema, name } = parseTableName(table);
    const state = qualified(schema, helperNames(schema, name).state);
    const { rows } = await this.pool.query('SELECT to_regclass($1) IS NOT NULL AS e', [state]);
    if (rows[0].e !== 't') return null;
    const found = await this.pool.query(`SELECT checkpoint FROM ${state} WHERE id = 1`);
    return found.rows.length ? String(found.rows[0].checkpoint) : null;
  }

  openProbes(plan: Plan, replicas: string[]): Promise<Probes> {
    return openPostgresProbes(this.pool, detailOf(plan), replicas);
  }

  /** The old table only when asked: after a successful run it is the rollback copy. */
  async cleanupLeftovers(table: string, options: { dropOld: boolean; dryRun?: boolean }): Promise<string[]> {
    const { schema, name } = parseTableName(table);
    const names = helperNames(schema, name);
    const dropped: string[] = [];
    const tables = options.dropOld ? [names.shadow, names.state, names.heartbeat, names.old] : [names.shadow, names.state, names.heartbeat];
    for (const t of tables) {
      const { rows } = await this.pool.query('SELECT to_regclass($1) IS NOT NULL AS e', [qualified(schema, t)]);
      if (rows[0].e === 't') dropped.push(`${schema}.${t}`);
    }
    const { rows: slots } = await this.pool.query(
      'SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained FROM pg_replication_slots WHERE slot_name = $1',
      [names.slot],
    );
    const { rows: pubs } = await this.pool.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [names.publication]);
    if (slots.length) dropped.push(`replication slot ${names.slot} (retaining ${slots[0].retained ?? 'no'} of WAL)`);
    if (pubs.length) dropped.push(`publication ${names.publication}`);
    if (options.dryRun) return dropped;
    for (const t of tables) await this.pool.query(`DROP TABLE IF EXISTS ${qualified(schema, t)}`);
    await dropStream(this.pool, names.slot, names.publication);
    return dropped;
  }

  comparePositions(a: Position, b: Position): number {
    return comparePositions(a, b);
  }

  async close(): Promise<void> {
    await this.stopStreams();
    await this.pool.end();
  }

  private async stopStreams(): Promise<void> {
    const streams = [...this.streams];
    this.streams.clear();
    await Promise.all(streams.map((s) => s.stop()));
  }

  private copier(plan: Plan): Copier {
    let copier = this.copiers.get(plan);
    if (!copier) this.copiers.set(plan, (copier = new Copier(detailOf(plan), this.pool)));
    return copier;
  }

  private async rolledBack<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      return await fn(client);
    } finally {
      await client.query('ROLLBACK').catch(() => {});
      client.release();
    }
  }
}
