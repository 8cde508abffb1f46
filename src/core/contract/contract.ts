import { sleep } from '../engine/retry/backoff.js';
import { RunClaim } from '../run/claim.js';
import { AbortedError, UserError } from '../engine/errors.js';
import type { Reporter } from '../report/reporter.js';
import { retryLockTimeouts, retryTransient, type RetryContext } from '../engine/retry/retry.js';
import type { StageResult } from '../report/stage-result.js';
import type { CheckResult, Engine } from '../engine/types.js';
import type { EngineServer } from '../engine/ports/server.js';
import { walkChunks } from '../run/walk-chunks.js';
import { DROP_UNIQUE_FLAG } from '../engine/contract/guarantees.js';
import { oldTableOf } from './old-table.js';
import { DEFAULT_MIN_SOAK_MS, soakCheck, type SoakRecord } from './soak.js';
import type { ContractCheck, ContractRequest, Contraction } from '../engine/ports/contract.js';
import { historyOf } from '../history/store.js';

export interface ContractOptions {
  execute: boolean;
  /** Go ahead although the server's statistics saw the object used (never past a dependency). */
  force: boolean;
  /** Drop a unique index although that drops its guarantee (`--drop-unique`; --force never does). */
  dropUnique: boolean;
  /** Longest wait for the table's lock per attempt at the DROP. */
  lockTimeoutMs: number;
  attempts: number;
  /** Rows per committed chunk of the backup copy. */
  chunkRows: number;
  /** The soak the stage a contract retires must have had (`soak.ts`); 0 overrides it, and the history says so. */
  minSoakMs: number;
  reporter: Reporter;
  signal?: AbortSignal;
}

export const defaultContractOptions = { lockTimeoutMs: 500, attempts: 10, chunkRows: 5000, minSoakMs: DEFAULT_MIN_SOAK_MS };

export interface ContractResult extends StageResult {
  outcome: 'dry-run' | 'done' | 'refused';
  detail: {
    table: string;
    drop: ContractRequest['drop'];
    backupTo: string | null;
    /** The dropped index's definition (`--drop-index`), to create it again. */
    indexDefinition: string | null;
    /** How the server made the change (e.g. ALGORITHM=INSTANT), once done. */
    method: string | null;
    attempts: number;
    /** Checks that failed and --force or --drop-unique overrode. */
    overridden: string[];
    /** The stage this contract retires and its soak; `overridden` when --min-soak 0 skipped it. */
    soak: SoakRecord;
    /** `--no-backup`: the operator chose to keep no copy of what goes. */
    noBackup: boolean;
    /** The backup's identity (`Contraction.keptIdentity`): restore refuses any other table under its name. */
    backupIdentity: string | null;
  };
}

/** Refused by its checks: every failed one on one line; the result lists them all, for a dry run to print. */
export class RefusedContract extends UserError {
  constructor(readonly result: ContractResult) {
    super(
      result.checks
        .filter((c) => !c.ok)
        .map((c) => c.message)
        .join('; '),
    );
    result.outcome = 'refused';
    result.summary = [...result.summary.slice(0, -1), 'refused by the failed check(s); nothing was changed'];
  }
}

/**
 * `shadowcut contract`: every check runs first (one dry run names every problem); then, with
 * `execute`, the backup: its capture (triggers that make every write to the table in the backup
 * too), then the rows in committed keyset chunks; then the DROP with a short lock timeout, retried
 * with backoff, so it never queues writers behind a long transaction. The capture is removed in the
 * DROP's own transaction (PostgreSQL) or under its LOCK TABLES (MySQL), so the backup is the
 * dropped data at the instant of the DROP. If the DROP cannot be had, the backup this run made goes
 * too: nothing is changed.
 */
export async function contract(engine: Engine, request: ContractRequest, options: ContractOptions): Promise<ContractResult> {
  const started = Date.now();
  requireBackupChoice(request);
  // Not while a migration runs on the table: its shadow was planned with these columns.
  const claim = await RunClaim.take(engine, request.table);
  let old: Awaited<ReturnType<typeof oldTableOf>> = null;
  try {
    old = await oldTableOf(engine, request);
    const contraction = await engine.prepareContract(request);
    const entries = [...(await historyOf(engine).list(engine.qualify(request.table))), ...(old?.migrations ?? [])];
    const soak = soakCheck(contraction.table, entries, request.drop, options.minSoakMs, Date.now());
    const checks = [...override(await contraction.checks(), options), soak.check];
    const result: ContractResult = {
      outcome: 'dry-run',
      rowsTouched: 0,
      checks,
      summary: [...contraction.summary, 'dry run: nothing was changed; add --execute to drop'],
      detail: {
        table: contraction.table,
        drop: request.drop,
        backupTo: request.backupTo ?? null,
        indexDefinition: contraction.indexDefinition ?? null,
        method: null,
        attempts: 0,
        overridden: checks.filter((c) => OVERRIDDEN.some((o) => c.message.startsWith(o))).map((c) => c.name),
        soak: soak.record,
        noBackup: request.noBackup === true,
        backupIdentity: null,
      },
      durationMs: 0,
    };
    result.durationMs = Date.now() - started;
    if (checks.some((c) => !c.ok)) throw new RefusedContract(result);
    if (options.execute) await execute(engine, contraction, options, result);
    result.durationMs = Date.now() - started;
    return result;
  } finally {
    await old?.claim.release();
    await claim.release();
  }
}

/**
 * Data is dropped only when the operator said what becomes of it: a copy (`--backup-to`, which
 * `restore` puts back) or none (`--no-backup`). An index has no data: its definition is recorded.
 */
function requireBackupChoice(request: ContractRequest): void {
  if (request.backupTo !== undefined && request.noBackup) throw new UserError('give --backup-to <table> or --no-backup, not both');
  if (request.drop.kind === 'index' || request.backupTo !== undefined || request.noBackup) return;
  const what = request.drop.kind === 'table' ? 'the table' : 'the column(s)';
  throw new UserError(
    `contract drops ${what} and its data: keep a copy with --backup-to <table> (shadowcut restore puts it back), or say --no-backup to drop it without one`,
  );
}

const BY_FORCE = 'overridden by --force: ';
const BY_DROP_UNIQUE = `overridden by ${DROP_UNIQUE_FLAG}: `;
const OVERRIDDEN = [BY_FORCE, BY_DROP_UNIQUE];

/** Each failed check is overridden only by its own flag: a use seen by --force, a unique index's guarantee by --drop-unique. */
function override(checks: ContractCheck[], options: Pick<ContractOptions, 'force' | 'dropUnique'>): CheckResult[] {
  return checks.map(({ overridable, dropsUniqueness, ...c }) => {
    if (c.ok) return c;
    if (options.force && overridable) return { ...c, ok: true, message: BY_FORCE + c.message };
    if (options.dropUnique && dropsUniqueness) return { ...c, ok: true, message: BY_DROP_UNIQUE + c.message };
    return c;
  });
}

async function execute(engine: EngineServer, contraction: Contraction, options: ContractOptions, result: ContractResult): Promise<void> {
  const { reporter } = options;
  const ctx: RetryContext = {
    isTransient: (error) => engine.isTransient(error),
    report: reporter,
    checkAbort: () => {
      if (options.signal?.aborted) throw new AbortedError(String(options.signal.reason ?? 'interrupted'));
    },
  };
  const locked = <T>(what: string, fn: () => Promise<T>) =>
    retryLockTimeouts(
      ctx,
      {
        what,
        attempts: options.attempts,
        starting: (attempt) => (result.detail.attempts = attempt),
        failed: () => {},
        wait: sleep,
        advice: 'raise --lock-timeout-ms or --attempts',
      },
      fn,
    );
  const backup = contraction.backup;
  // What this run made goes again; a backup whose capture cannot be removed stays, so writes never fail on it.
  const removeBackup = () =>
    backup
      ? locked('removing the backup', () => backup.remove(options.lockTimeoutMs)).catch((error: Error) =>
          reporter.warn(`the backup could not be removed: ${error.message}`),
        )
      : undefined;
  if (backup) {
    // The capture first: from its commit on, every write to the table is also made to the backup.
    reporter.info(`backup: copying into ${backup.table}`);
    try {
      await locked("the backup's capture", () => backup.create(options.lockTimeoutMs));
      await walkChunks(
        (after, rows) => backup.nextBoundary(after, rows),
        options.chunkRows,
        async (range) => {
          ctx.checkAbort();
          // A chunk whose row locks were not had in time rolled back whole: tried again, as the DROP is.
          result.rowsTouched += await locked('a backup chunk', () => retryTransient(ctx, 'a backup chunk', () => backup.copyRange(range)));
        },
      );
      result.detail.backupIdentity = (await contraction.keptIdentity?.()) ?? null;
    } catch (error) {
      await removeBackup();
      throw error;
    }
    reporter.info(`backup: ${result.rowsTouched} row(s) written by the copy into ${backup.table}; the capture keeps it current until the DROP`);
  }
  // A table contract's backup is the table itself: its identity survives the rename.
  if (!backup) result.detail.backupIdentity = (await contraction.keptIdentity?.()) ?? null;
  try {
    result.detail.method = await locked('the DROP', () => contraction.drop(options.lockTimeoutMs));
  } catch (error) {
    await removeBackup();
    throw error;
  }
  result.outcome = 'done';
  result.summary = [
    ...result.summary.slice(0, -1),
    `done (${result.detail.method}) in ${result.detail.attempts} attempt(s)` +
      // rowsTouched counts the copy's writes; the capture's and a re-copied row's are not told apart.
      (backup ? `; the dropped data as it was at the DROP is kept in ${backup.table} until you drop it` : ''),
  ];
}
