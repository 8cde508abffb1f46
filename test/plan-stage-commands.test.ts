import { describe, expect, it } from 'vitest';
import { databases, useDatabase, type Database } from './support/fixture.js';

/**
 * The commands plan writes for an expand/contract walk are meant to be pasted into a terminal. Each
 * `verify` among them must be one verify accepts: the walk's stages are run in order up to it (the
 * expand's migrate, the backfill) on a table with NULLs, and the verify must pass; a row that breaks
 * it again must be found as a difference, not refused as input.
 */
const BREAKING: Record<'mysql' | 'postgres', string[]> = {
  mysql: ['RENAME COLUMN c TO c2', 'MODIFY c BIGINT', 'MODIFY c INT NOT NULL'],
  postgres: ['RENAME COLUMN c TO c2', 'ALTER COLUMN c TYPE bigint', 'ALTER COLUMN c SET NOT NULL'],
};

/** A command as a shell reads the words `quote()` writes: bare, '...', or "..." with \ escapes. */
function shellWords(command: string): string[] {
  const words: string[] = [];
  const word = /'([^']*)'|"((?:\\.|[^"\\])*)"|(\S+)/g;
  for (const m of command.matchAll(word)) words.push(m[1] ?? m[2]?.replace(/\\(.)/g, '$1') ?? m[3]);
  return words;
}

/** The stage's arguments for the CLI: its own URL (printed with the password hidden) becomes the test's. */
function argsOf(command: string): string[] {
  const words = shellWords(command);
  expect(words[0]).toBe('shadowcut');
  const url = words.indexOf('--url');
  words[url + 1] = '$URL';
  // The NOT NULL stage leaves the value to the operator.
  return words.slice(1).map((w) => w.replace('<value>', '0'));
}

async function makeTable(db: Database): Promise<void> {
  await db.drop('ps_t');
  await db.query('CREATE TABLE ps_t (id INT PRIMARY KEY, c INT NULL)');
  await db.query(`INSERT INTO ps_t SELECT g, g FROM (${db.series(300)}) s`);
}

describe.each(databases)('plan stage commands ($name)', ({ kind, open }) => {
  const db = useDatabase(open, 'ps_t');

  it.each(BREAKING[kind])('every verify plan writes for %s is accepted and passes after the stages before it', async (alter) => {
    await makeTable(db);
    const plan = db.cli(['plan', '--url', '$URL', '--table', 'ps_t', '--alter', alter, '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    // NULLs after the plan: MariaDB's plan stops on a NOT NULL its sample cannot take (not this test's subject).
    await db.query('UPDATE ps_t SET c = NULL WHERE id % 3 = 0');
    const stages: { command?: string }[] = JSON.parse(plan.stdout.trim().split('\n').pop()!).detail.stages.flatMap((s: { stages: unknown[] }) => s.stages);
    const commands = stages.map((s) => s.command).filter((c): c is string => c !== undefined);
    const verifies = commands.filter((c) => c.startsWith('shadowcut verify '));
    expect(verifies.length, commands.join('\n')).toBeGreaterThan(0);
    for (const command of commands.slice(0, commands.indexOf(verifies[verifies.length - 1]) + 1)) {
      const args = argsOf(command);
      // The backfill is printed as its dry run, to be read first; the walk runs it.
      if (args[0] === 'backfill') args.push('--execute');
      const run = db.cli(args);
      expect(run.code, `${command}\n${run.stderr}`).toBe(0);
    }
    // The same verify on a row that breaks it: a difference (exit 1), not bad input (2).
    await db.query('INSERT INTO ps_t (id, c) VALUES (1000, NULL), (1001, 5)');
    for (const command of verifies) {
      const run = db.cli(argsOf(command));
      expect(run.stderr, command).toMatch(/row\(s\) of \S+ps_t differ/);
      expect(run.code, command).not.toBe(2);
    }
  });
});
