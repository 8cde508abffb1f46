import { sleep } from '../backoff.js';
import { RunClaim } from '../claim.js';
import { AbortedError, UserError } from '../errors.js';
import type { Reporter } from '../reporter.js';
import { retryLockTimeouts, retryTransient, type RetryContext } from '../retry.js';
import type { StageResult } from '../stage-result.js';
import type { CheckResult, Engine } from '../types.js';
import { walkChunks } from '../verify.js';
import type { ContractCheck, ContractRequest, Contraction } from './types.js';

export interface ContractOptions {
  execute: boolean;
  /** Go ahead although the server's statistics saw the object used (never past a dependency). */
  force: boolean;
  /** Longest wait for the table's lock per attempt at the DROP. */
  lockTimeoutMs: number;
  attempts: number;
  /** Rows per committed chunk of the backup copy. */
  chunkRows: number;
  reporter: Reporter;
  signal?: AbortSignal;
}

export const defaultContractOptions = { lockTimeoutMs: 500, attempts: 10, chunkRows: 5000 };

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
    /** Checks that failed and --force overrode. */
    overridden: string[];
  };
}

/** Refused by its checks: every failed one on one line; the result lists them all, for a dry run to print. */
export class RefusedContract extends UserError {
  constructor(readonly result: ContractResult) {
    super(result.checks.filter((c) => !c.ok).map((c) => c.message).join('; '));
    result.outcome = 'refused';
    result.summary = [...result.summary.slice(0, -1), 'refused by the failed check(s); nothing was changed'];
  }
}

/**
 * `shadowcut contract`: every check runs first (one dry run names every problem); then, with
 * `execute`, the backup in committed keyset chunks, then the DROP with a short lock timeout,
 * retried with backoff, so it never queues writers behind a long transaction. If the DROP cannot
 * be had, the backup this run made goes too: nothing is changed.
 */
export async function contract(engine: Engine, request: ContractRequest, options: ContractOptions): Promise<ContractResult> {
  const started = Date.now();
  // Not while a migration runs on the table: its shadow was planned with these columns.
  const claim = await RunClaim.take(engine, request.table);
  try {
    const contraction = await engine.prepareContract(request);
    const checks = overrideUsage(await contraction.checks(), options.force);
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
        overridden: checks.filter((c) => c.message.startsWith(OVERRIDDEN)).map((c) => c.name),
      },
      durationMs: 0,
    };
    result.durationMs = Date.now() - started;
    if (checks.some((c) => !c.ok)) throw new RefusedContract(result);
    if (options.execute) await execute(engine, contraction, options, result);
    result.durationMs = Date.now() - started;
    return result;
  } finally {
    await claim.release();
  }
}

const OVERRIDDEN = 'overridden by --force: ';

function overrideUsage(checks: ContractCheck[], force: boolean): CheckResult[] {
  return checks.map(({ overridable, ...c }) => (force && overridable && !c.ok ? { ...c, ok: true, message: OVERRIDDEN + c.message } : c));
}

async function execute(engine: Engine, contraction: Contraction, options: ContractOptions, result: ContractResult): Promise<void> {
  const { reporter } = options;
  const ctx: RetryContext = {
    isTransient: (error) => engine.isTransient(error),
    report: reporter,
    checkAbort: () => {
      if (options.signal?.aborted) throw new AbortedError(String(options.signal.reason ?? 'interrupted'));
    },
  };
  const backup = contraction.backup;
  if (backup) {
    await backup.create();
    reporter.info(`backup: copying into ${backup.table}`);
    try {
      await walkChunks((after, rows) => backup.nextBoundary(after, rows), options.chunkRows, async (range) => {
        ctx.checkAbort();
        result.rowsTouched += await retryTransient(ctx, 'a backup chunk', () => backup.copyRange(range));
      });
    } catch (error) {
      await backup.remove().catch(() => {});
      throw error;
    }
    reporter.info(`backup: ${result.rowsTouched} row(s) in ${backup.table}`);
  }
  try {
    result.detail.method = await retryLockTimeouts(
      ctx,
      {
        what: 'the DROP',
        attempts: options.attempts,
        starting: (attempt) => (result.detail.attempts = attempt),
        failed: () => {},
        wait: sleep,
        advice: 'raise --lock-timeout-ms or --attempts',
      },
      () => contraction.drop(options.lockTimeoutMs),
    );
  } catch (error) {
    await backup?.remove().catch(() => {});
    throw error;
  }
  result.outcome = 'done';
  result.summary = [
    ...result.summary.slice(0, -1),
    `done (${result.detail.method}) in ${result.detail.attempts} attempt(s)` +
      (backup ? `; ${result.rowsTouched} row(s) kept in ${backup.table} until you drop it` : ''),
  ];
}
