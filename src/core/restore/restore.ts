import { sleep } from '../engine/retry/backoff.js';
import { backfill } from '../backfill/run.js';
import { definedOnly } from '../run/config.js';
import { defaultBackfillOptions, type BackfillOptions } from '../backfill/config.js';
import type { BackfillRequest } from '../engine/ports/backfill.js';
import { isBackfill, openCheckpoint, type CheckpointScope } from '../engine/state/checkpoint.js';
import { RunClaim } from '../run/claim.js';
import { AbortedError, UserError } from '../engine/errors.js';
import type { HistoryEntry } from '../engine/ports/history.js';
import type { EngineHelperTables } from '../engine/ports/helper-table.js';
import { retryLockTimeouts, type RetryContext } from '../engine/retry/retry.js';
import type { StageResult } from '../report/stage-result.js';
import type { Engine } from '../engine/types.js';
import type { EngineServer } from '../engine/ports/server.js';
import type { BackupColumn, RestoreTarget } from '../engine/ports/restore.js';
import { historyOf } from '../history/store.js';

export interface RestoreRequest {
  table: string;
  /** The backup `contract --backup-to` made: the dropped columns with the key, or the table renamed. */
  from: string;
  /** Fill columns a killed restore already added (without it, an existing column is refused). */
  resume: boolean;
}

/** The fill is a backfill (throttle, hooks, control, checkpoint); the ADD COLUMN and the rename wait as a contract's DROP does. */
export type RestoreOptions = Omit<BackfillOptions, 'resume'> & {
  lockTimeoutMs: number;
  attempts: number;
  /** Called once the table has changed (columns added, table renamed back): a failure after it is history, one before a refusal. */
  changed?: () => void;
};

export const defaultRestoreOptions = { lockTimeoutMs: 500, attempts: 10 };

export interface RestoreResult extends StageResult {
  outcome: 'dry-run' | 'success';
  detail: {
    table: string;
    backup: string;
    kind: 'column' | 'table';
    /** The columns put back, as the backup's catalog defines them. */
    columns: BackupColumn[];
    /** When the contract that made the backup finished. */
    contractedAt: string;
    /** How the server added the columns; null when a resumed run found them there, or for a table. */
    method: string | null;
    batches: number;
    resumed: boolean;
  };
}

/** What the contract dropped, as its history entry says: only column and table contracts keep data. */
type Kept = { kind: 'column'; columns: string[] } | { kind: 'table' };

/**
 * `shadowcut restore`: puts back what `contract --backup-to` kept, as the table's history records it.
 * A table is renamed back. Columns are added again (NULL, no default: the backup's catalog gives type
 * and collation, never SQL text) and filled from the backup by key in a backfill, whose batches are
 * throttled, checkpointed and resumed like any backfill's; only a restored column still NULL is
 * filled, so a value the application wrote meanwhile is kept.
 */
export async function restore(engine: Engine, request: RestoreRequest, options: Partial<RestoreOptions> = {}): Promise<RestoreResult> {
  const opts = { ...defaultBackfillOptions, chunkTimeMs: engine.chunkTimeMs, ...defaultRestoreOptions, ...definedOnly(options) };
  const started = Date.now();
  const table = engine.qualify(request.table);
  const contracted = contractThatKept(await historyOf(engine).list(table), engine, request.from);
  if (!contracted) {
    throw new UserError(
      `the history of ${table} has no contract that kept its data in ${request.from}: restore puts back only what "contract --backup-to ${request.from}" kept`,
    );
  }
  const kept = (contracted.detail as { drop: Kept }).drop;
  const target = await engine.prepareRestore({ table: request.table, backup: request.from });
  if (target.backupColumns === null) throw new UserError(`${target.backup} does not exist: nothing to restore ${table} from`);
  const result: RestoreResult = {
    outcome: 'dry-run',
    rowsTouched: 0,
    checks: [],
    summary: [],
    detail: {
      table,
      backup: target.backup,
      kind: kept.kind,
      columns: [],
      contractedAt: contracted.finishedAt,
      method: null,
      batches: 0,
      resumed: request.resume,
    },
    durationMs: 0,
  };
  if (kept.kind === 'table') {
    if (target.tableColumns !== null)
      throw new UserError(`${table} exists: restore renames ${target.backup} back to that name; rename or drop the one there first`);
  } else {
    await target.checkOwn();
  }
  requireKeptTable(contracted, target, engine);
  const done = (lines: string[]) => {
    result.summary = lines;
    result.durationMs = Date.now() - started;
    return result;
  };
  if (kept.kind === 'table') {
    if (!opts.execute) return done([`renames ${target.backup} back to ${table} (dropped by the contract of ${contracted.finishedAt})`, DRY_RUN]);
    await claimed(engine, request.table, () => lockRetries(opts, 'renaming the backup back', () => target.renameBack(opts.lockTimeoutMs)));
    opts.changed?.();
    result.outcome = 'success';
    return done([`${target.backup} is ${table} again`]);
  }
  const columns = backupColumnsOf(target, kept.columns);
  result.detail.columns = columns;
  const added = columnsPresent(target, columns, request.resume);
  const fill = fillRequest(request.table, target, columns);
  // The killed restore's fill is a backfill with this very SET: resumed after its last committed batch.
  const resume = fillToResume(await engine.loadCheckpoint(request.table), fill, engine, request.table, table);
  const plan = [
    added
      ? `fills ${columns.map((c) => c.name).join(', ')} of ${table} again`
      : `adds ${columns.map((c) => `${c.name} ${c.definition} NULL`).join(', ')} to ${table}`,
    `fills them from ${target.backup} (~${target.backupRows} row(s), kept by the contract of ${contracted.finishedAt}) by key, in throttled batches: ${fill.set}`,
    "a value the application writes into a restored column meanwhile is kept (a NULL it writes is filled over); rows inserted after the contract stay NULL, unless they reuse a dropped row's key",
  ];
  if (!opts.execute) return done([...plan, DRY_RUN]);
  if (!added) {
    result.detail.method = await claimed(engine, request.table, () =>
      lockRetries(opts, 'adding the column(s)', () => target.addColumns(columns, opts.lockTimeoutMs)),
    );
  }
  opts.changed?.();
  const filled = await backfill(engine, fill, { ...opts, execute: true, resume });
  result.outcome = 'success';
  result.rowsTouched = filled.rowsTouched;
  result.checks = filled.checks;
  result.detail.batches = filled.detail.batches;
  result.detail.resumed = request.resume || filled.detail.resumed;
  return done([
    ...plan.slice(0, 1),
    `${filled.rowsTouched} row(s) filled from ${target.backup} in ${filled.detail.batches} batch(es)`,
    `added NULL and without a default: give ${columns.map((c) => c.name).join(', ')} back NOT NULL or a DEFAULT with shadowcut migrate if they had them; ${target.backup} is kept until you drop it`,
  ]);
}

/**
 * An index keeps no data, so there is nothing to restore: its contract recorded the definition, which
 * is shown for the operator to review and run (or give to migrate), never run from the history here.
 */
export async function indexNotRestorable(engine: EngineServer & EngineHelperTables, table: string, index: string): Promise<never> {
  const entry = (await historyOf(engine).list(engine.qualify(table)))
    .filter((e) => {
      const d = e.detail as { drop?: { kind?: string; index?: string } };
      return e.command === 'contract' && e.outcome === 'success' && d.drop?.kind === 'index' && d.drop.index?.toLowerCase() === index.toLowerCase();
    })
    .pop();
  if (!entry) throw new UserError(`the history of ${engine.qualify(table)} has no contract that dropped index ${index}`);
  const definition = (entry.detail as { indexDefinition?: string | null }).indexDefinition ?? 'not recorded';
  throw new UserError(
    `restore cannot rebuild index ${index} (an index keeps no data): the contract of ${entry.finishedAt} recorded its definition, to review and run yourself or give to shadowcut migrate: ${definition}`,
  );
}

const DRY_RUN = 'dry run: nothing was changed; add --execute to restore';

/** The latest successful contract of the table whose backup has that name (a column or table contract: an index keeps no data). */
function contractThatKept(entries: HistoryEntry[], engine: EngineServer, from: string): HistoryEntry | undefined {
  const wanted = engine.qualify(from);
  return entries
    .filter((e) => {
      const d = e.detail as { backupTo?: string | null; drop?: { kind?: string } };
      return e.command === 'contract' && e.outcome === 'success' && d.backupTo && d.drop?.kind !== 'index' && engine.qualify(d.backupTo) === wanted;
    })
    .pop();
}

/**
 * The backup is the very table the contract kept, by the identity it recorded (`keptIdentity`): a
 * name proves nothing, since whoever may create tables in the schema can put one of their own (with
 * a trigger that runs as whoever writes it, or forged rows) under a backup's name once it is gone.
 */
function requireKeptTable(contracted: HistoryEntry, target: RestoreTarget, engine: EngineServer): void {
  const recorded = (contracted.detail as { backupIdentity?: string | null }).backupIdentity ?? null;
  if (recorded === null) {
    throw new UserError(
      `the contract of ${contracted.finishedAt} recorded no identity of ${target.backup}, so restore cannot tell it from a table another role put under its name: check it is yours and put it back yourself`,
    );
  }
  if (target.backupIdentity !== recorded) {
    throw new UserError(
      `${target.backup} is not the table the contract of ${contracted.finishedAt} kept (${recorded}; now ${target.backupIdentity ?? `unreadable: ${engine.terms.identityUnreadable}`}): someone replaced it, so nothing is read from it`,
    );
  }
}

/** The contract's columns as the backup has them: the names it kept, the key it kept them by. */
function backupColumnsOf(target: RestoreTarget, names: string[]): BackupColumn[] {
  const backup = target.backupColumns!;
  const columns = names.map((n) => {
    const found = backup.find((c) => c.name === n) ?? backup.find((c) => c.name.toLowerCase() === n.toLowerCase());
    if (!found) throw new UserError(`${target.backup} has no column ${n}: it is not the backup the contract made`);
    return found;
  });
  const missingKey = target.backupKey.filter((k) => !target.tableColumns?.includes(k));
  if (target.tableColumns === null) throw new UserError(`${target.table} does not exist: restore puts columns back into the table they came from`);
  if (target.backupKey.length === 0 || missingKey.length) {
    throw new UserError(
      `${target.backup}'s key (${target.backupKey.join(', ') || 'none'}) is not in ${target.table}: its rows cannot be matched to the table's`,
    );
  }
  return columns;
}

/**
 * Whether a killed restore's fill is there to resume. Another run's checkpoint (a killed migrate,
 * whose shadow was planned without these columns; another backfill) is refused before anything
 * changes: the fill could not run past it, and the columns would be left added and empty.
 */
function fillToResume(saved: string | null, fill: BackfillRequest, scope: CheckpointScope, given: string, table: string): boolean {
  if (saved === null) return false;
  const checkpoint = openCheckpoint(saved, scope, given);
  if (isBackfill(checkpoint) && checkpoint.set === fill.set) return true;
  throw new UserError(
    `an interrupted ${isBackfill(checkpoint) ? 'backfill' : 'migrate'} of ${table} left a checkpoint: finish it with its --resume, or remove it with "shadowcut cleanup --url ... --table ${table}", then restore`,
  );
}

/** Whether the columns are there already: all of them only when resuming a killed restore; some of them never. */
function columnsPresent(target: RestoreTarget, columns: BackupColumn[], resume: boolean): boolean {
  const has = (c: BackupColumn) => target.tableColumns!.some((t) => t.toLowerCase() === c.name.toLowerCase());
  const present = columns.filter(has).map((c) => c.name);
  if (present.length === 0) {
    if (resume) throw new UserError(`nothing to resume: ${target.table} has none of ${columns.map((c) => c.name).join(', ')}; run without --resume`);
    return false;
  }
  if (present.length < columns.length || !resume) {
    throw new UserError(
      `column(s) ${present.join(', ')} already exist in ${target.table}: restore adds them; after a killed restore of all of them, add --resume to fill them`,
    );
  }
  return true;
}

/** The backfill that fills the columns: each from the backup's row with the same key, where it is still NULL. */
function fillRequest(table: string, target: RestoreTarget, columns: BackupColumn[]): BackfillRequest {
  const { ident, backup, tableAlias } = target.sql;
  // The backup by its own qualified name, never an alias: an alias could be the table's own name, and
  // `b.id = b.id` would match every backup row. The two names differ (one schema, two tables).
  const match = target.backupKey.map((k) => `${backup}.${ident(k)} = ${tableAlias}.${ident(k)}`).join(' AND ');
  return {
    table,
    // Column by column: a value the application wrote into one restored column keeps it, and the
    // row's others are still filled. (A NULL it wrote cannot be told from one not filled yet.)
    set: columns.map((c) => `${ident(c.name)} = COALESCE(${ident(c.name)}, (SELECT ${backup}.${ident(c.name)} FROM ${backup} WHERE ${match}))`).join(', '),
    where: columns.map((c) => `${ident(c.name)} IS NULL`).join(' OR '),
  };
}

async function claimed<T>(engine: EngineServer, table: string, fn: () => Promise<T>): Promise<T> {
  // Not while a migration or backfill runs on the table; released before the fill, which takes it again.
  const claim = await RunClaim.take(engine, table);
  try {
    return await fn();
  } finally {
    await claim.release();
  }
}

function lockRetries<T>(opts: RestoreOptions, what: string, fn: () => Promise<T>): Promise<T> {
  const ctx: RetryContext = {
    isTransient: () => false,
    report: opts.reporter,
    checkAbort: () => {
      if (opts.signal?.aborted) throw new AbortedError(String(opts.signal.reason ?? 'interrupted'));
    },
  };
  return retryLockTimeouts(
    ctx,
    { what, attempts: opts.attempts, starting: () => {}, failed: () => {}, wait: sleep, advice: 'raise --lock-timeout-ms or --attempts' },
    fn,
  );
}
