#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { UserError } from '../core/errors.js';
import { cleanupCommand } from './cleanup.js';
import { migrateCommand } from './migrate.js';

const program = new Command('shadowcut')
  .description('online schema change for MySQL/MariaDB and PostgreSQL')
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) })
  .addCommand(migrateCommand())
  .addCommand(cleanupCommand());
for (const command of program.commands) command.exitOverride();

try {
  await program.parseAsync(process.argv);
  process.exit(0);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version are "errors" to commander; its message is already printed.
    process.exit(error.exitCode);
  }
  if (error instanceof UserError) {
    process.stderr.write(`shadowcut: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  process.stderr.write(`shadowcut: internal error: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
