#!/usr/bin/env node
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { traceDroppedFailures, UserError } from '../core/engine/errors.js';
import { redactArgument, redactUrlsIn } from '../core/engine/connect/secrets.js';
import { backfillCommand } from './backfill.js';
import { cleanupCommand } from './cleanup.js';
import { historyCommand } from './history.js';
import { abortCommand, completeCommand, cutoverCommand, pauseCommand, resumeCommand, revertCommand, setCommand, statusCommand } from './control.js';
import { migrateCommand } from './migrate.js';
import { planCommand } from './plan.js';
import { verifyCommand } from './verify.js';
import { contractCommand } from './contract.js';
import { restoreCommand } from './restore.js';
import { queueCommand } from './queue.js';
import { stderr } from './output.js';

// A password in a --url on the command line was visible in ps from the start: hide it as soon as
// Node runs (Linux rewrites /proc/<pid>/cmdline). This shortens the exposure, it does not remove it:
// --url-file and SHADOWCUT_URL keep it out of ps altogether.
const shownArgs = process.argv.slice(2).map(redactArgument);
if (shownArgs.some((arg, i) => arg !== process.argv[i + 2])) process.title = ['shadowcut', ...shownArgs].join(' ');

// Usage errors read like every other refusal: one line, "shadowcut: ...".
const output = { writeErr: (text: string) => stderr.text(text.replace(/^error: /, 'shadowcut: ')) };

const program = new Command('shadowcut')
  .description('online schema change for MySQL/MariaDB and PostgreSQL')
  .exitOverride()
  .configureOutput(output)
  .addCommand(migrateCommand())
  .addCommand(backfillCommand())
  .addCommand(planCommand())
  .addCommand(verifyCommand())
  .addCommand(contractCommand())
  .addCommand(restoreCommand())
  .addCommand(cleanupCommand())
  .addCommand(statusCommand())
  .addCommand(pauseCommand())
  .addCommand(resumeCommand())
  .addCommand(cutoverCommand())
  .addCommand(revertCommand())
  .addCommand(completeCommand())
  .addCommand(abortCommand())
  .addCommand(setCommand())
  .addCommand(historyCommand())
  // The queue starts its stages with this same file: the bundle when run as the bundle.
  .addCommand(queueCommand(fileURLToPath(import.meta.url)));
const VERBOSE = 'tell on stderr each failure shadowcut drops on purpose (a cleanup after an error, a probe that may fail), with why';
for (const command of program.commands) {
  command.exitOverride().configureOutput(output);
  if (!command.commands.length) command.option('--verbose', VERBOSE);
  for (const sub of command.commands) sub.exitOverride().configureOutput(output).option('--verbose', VERBOSE);
}
program.hook('preAction', (_program, action) => {
  if (action.opts<{ verbose?: boolean }>().verbose) traceDroppedFailures((line) => stderr.line(`shadowcut: debug: ${redactUrlsIn(line)}`));
});

// A stage run by `queue run` ends with its runner, as a crash: a runner killed with SIGKILL cannot
// stop it, and the next runner must find it gone (and its checkpoint there), not still running.
const runner = process.env.SHADOWCUT_EXIT_WITH_PARENT;
// Not passed on: a hook that runs shadowcut is this stage's child, not the runner's.
delete process.env.SHADOWCUT_EXIT_WITH_PARENT;
if (runner) {
  setInterval(() => {
    if (String(process.ppid) !== runner) process.kill(process.pid, 'SIGKILL');
  }, 500).unref();
}

try {
  await program.parseAsync(process.argv);
  process.exit(0);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version are "errors" to commander with exit code 0; its message is already printed.
    process.exit(error.exitCode === 0 ? 0 : 2);
  }
  if (error instanceof UserError) {
    // Every message that quotes a URL already hides its password; this is the net under them all.
    stderr.line(`shadowcut: ${redactUrlsIn(error.message)}`);
    process.exit(error.exitCode);
  }
  stderr.text(`shadowcut: internal error: ${redactUrlsIn((error as Error).stack ?? String(error))}\n`);
  process.exit(1);
}
