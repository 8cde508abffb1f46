import { Command, InvalidArgumentError } from 'commander';
import { defaultOptions, migrate, type MigrateResult } from '../core/runner.js';
import type { Reporter } from '../core/reporter.js';
import { createEngine } from '../engines/index.js';
import { JsonReporter, PlainReporter, TerminalReporter } from './render.js';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

export function migrateCommand(): Command {
  return new Command('migrate')
    .description('change a table online: shadow table, copy, follow changes, verify, cut over')
    .requiredOption('--url <url>', 'mysql://user:pass@host:port/db or postgres://user:pass@host:port/db')
    .requiredOption('--table <name>', 'table to change (PostgreSQL: schema.name, default schema public)')
    .requiredOption('--alter <clause>', 'what follows ALTER TABLE <name>, in the engine\'s own syntax')
    .option('--execute', 'make the change; without it, print the plan and preflight results only', false)
    .option('--chunk-time-ms <ms>', 'target duration of one copy chunk', positiveInt, defaultOptions.chunkTimeMs)
    .option('--lock-timeout-ms <ms>', 'longest wait for the cut-over lock per attempt', positiveInt, defaultOptions.lockTimeoutMs)
    .option('--cutover-attempts <n>', 'cut-over attempts before giving up (backoff between)', positiveInt, defaultOptions.cutoverAttempts)
    .option('--checksum-chunk-rows <n>', 'rows per checksum chunk', positiveInt, defaultOptions.checksumChunkRows)
    .option('--drop-old', 'drop the original table after the cut-over instead of keeping it as <name>__old', false)
    .option('--json', 'log one JSON object per line on stdout', false)
    .action(async (opts) => {
      const reporter: Reporter = opts.json ? new JsonReporter() : process.stderr.isTTY ? new TerminalReporter() : new PlainReporter();
      const engine = await createEngine(opts.url);
      const controller = new AbortController();
      let interrupts = 0;
      const onSignal = (signal: string) => {
        if (++interrupts > 1) process.exit(130);
        reporter.warn(`${signal} received: stopping and removing helper objects (again to exit at once)`);
        controller.abort(signal);
      };
      process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
      try {
        const result = await migrate(
          engine,
          { url: opts.url, table: opts.table, alter: opts.alter },
          {
            execute: opts.execute,
            chunkTimeMs: opts.chunkTimeMs,
            lockTimeoutMs: opts.lockTimeoutMs,
            cutoverAttempts: opts.cutoverAttempts,
            checksumChunkRows: opts.checksumChunkRows,
            dropOld: opts.dropOld,
            reporter,
            signal: controller.signal,
          },
        );
        printResult(result, opts.json ? (reporter as JsonReporter) : null);
      } finally {
        await engine.close().catch(() => {});
      }
    });
}

function printResult(r: MigrateResult, json: JsonReporter | null): void {
  if (json) {
    json.emit({
      event: 'result',
      executed: r.executed,
      table: r.plan.table,
      checks: r.checks,
      rowsCopied: r.rowsCopied,
      changesApplied: r.changesApplied,
      cutoverAttempts: r.cutoverAttempts,
      cutoverLockedMs: r.cutoverLockedMs,
      checksumRounds: r.checksumRounds,
      durationMs: r.durationMs,
    });
    return;
  }
  const out: string[] = [`table: ${r.plan.table}`, `alter: ${r.plan.alter}`, ...r.plan.summary, 'preflight:'];
  for (const c of r.checks) out.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.message}`);
  if (!r.executed) {
    out.push('dry run: nothing was changed; add --execute to run the migration');
  } else {
    out.push(
      `done: ${r.rowsCopied} rows copied, ${r.changesApplied} changes applied, parity proven in ${r.checksumRounds} checksum round(s), ` +
        `cut-over in ${r.cutoverAttempts} attempt(s) blocking writers ${r.cutoverLockedMs} ms, ${(r.durationMs / 1000).toFixed(1)} s in all`,
      `the original table is kept as ${r.plan.oldTable} unless --drop-old was given`,
    );
  }
  process.stdout.write(out.join('\n') + '\n');
}
