#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { UserError } from '../core/errors.js';
import { backfillCommand } from './backfill.js';
import { cleanupCommand } from './cleanup.js';
import { historyCommand } from './history.js';
import { abortCommand, cutoverCommand, pauseCommand, resumeCommand, setCommand, statusCommand } from './control.js';
import { migrateCommand } from './migrate.js';
import { planCommand } from './plan.js';
import { verifyCommand } from './verify.js';
import { contractCommand } from './contract.js';

// Usage errors read like every other refusal: one line, "shadowcut: ...".
const output = { writeErr: (text: string) => process.stderr.write(text.replace(/^error: /, 'shadowcut: ')) };

const program = new Command('shadowcut')
  .description('online schema change for MySQL/MariaDB and PostgreSQL')
  .exitOverride()
  .configureOutput(output)
  .addCommand(migrateCommand())
  .addCommand(backfillCommand())
  .addCommand(planCommand())
  .addCommand(verifyCommand())
  .addCommand(contractCommand())
  .addCommand(cleanupCommand())
  .addCommand(statusCommand())
  .addCommand(pauseCommand())
  .addCommand(resumeCommand())
  .addCommand(cutoverCommand())
  .addCommand(abortCommand())
  .addCommand(setCommand())
  .addCommand(historyCommand());
for (const command of program.commands) command.exitOverride().configureOutput(output);

try {
  await program.parseAsync(process.argv);
  process.exit(0);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version are "errors" to commander with exit code 0; its message is already printed.
    process.exit(error.exitCode === 0 ? 0 : 2);
  }
  if (error instanceof UserError) {
    process.stderr.write(`shadowcut: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  process.stderr.write(`shadowcut: internal error: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
