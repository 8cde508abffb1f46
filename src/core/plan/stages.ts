import type { BreakingChange } from '../engine/ports/in-place.js';

/** One stage of an expand/contract walk: a shadowcut command, or a deploy of the application. */
export interface Stage {
  what: string;
  command?: string;
}

export interface StageContext {
  /** The URL as the commands print it (password hidden). */
  url: string;
  table: string;
  /** The user's whole ALTER part, for the last stage of NOT NULL. */
  clause: string;
}

/**
 * Changes that break code still running against the old schema are better made in stages, each a
 * deploy of its own with its own rollback: add the new shape beside the old, write both, backfill,
 * verify, switch reads, and only then remove the old. Written as the commands to run.
 */
export function expandContract(change: BreakingChange, ctx: StageContext): Stage[] {
  const cmd = (name: string, args: string) => `shadowcut ${name} --url ${quote(ctx.url)} --table ${quote(ctx.table)} ${args}`;
  // With a backup, which `shadowcut restore` puts back.
  const contractCmd = (column: string) => cmd('contract', `--drop-column ${column} --backup-to ${ctx.table.split('.').pop()}_backup`);
  const expand = (column: string, type: string): Stage => ({
    what: `expand: add ${column}, nullable, in place`,
    command: cmd('migrate', `--alter ${quote(`ADD COLUMN ${column} ${type} NULL`)} --execute`),
  });
  const moveTo = (from: string, to: string, why: string): Stage[] => [
    expand(to, change.kind === 'type-change' ? change.to : (change as { type: string }).type),
    { what: `deploy the application writing both ${from} and ${to}${why}` },
    { what: `backfill ${to} in small batches`, command: cmd('backfill', `--set ${quote(`${to} = ${from}`)} --where ${quote(`${to} IS NULL`)}`) },
    { what: `verify ${to} against ${from}`, command: cmd('verify', `--expect ${quote(`${to} = ${from}`)}`) },
    { what: `deploy the application reading ${to}, then writing only ${to}` },
    { what: `contract: drop ${from} once nothing uses it and the soak (--min-soak, a week) is over, keeping its data`, command: contractCmd(from) },
  ];
  switch (change.kind) {
    case 'rename-column':
      return moveTo(change.from, change.to, '');
    case 'type-change':
      return moveTo(change.column, `${change.column}_new`, ` (${change.column}_new as ${change.to})`);
    case 'drop-column':
      return [
        { what: `deploy the application no longer reading or writing ${change.column}` },
        { what: `contract: drop ${change.column}, keeping its data until you remove the backup`, command: contractCmd(change.column) },
      ];
    case 'not-null':
      return [
        { what: `deploy the application writing ${change.column} on every insert and update (or give it a DEFAULT first)` },
        {
          what: `backfill the rows where ${change.column} is NULL`,
          command: cmd('backfill', `--set ${quote(`${change.column} = <value>`)} --where ${quote(`${change.column} IS NULL`)}`),
        },
        { what: `verify no NULL is left`, command: cmd('verify', `--expect ${quote(`${change.column} IS NOT NULL`)}`) },
        { what: 'then make the column NOT NULL', command: cmd('migrate', `--alter ${quote(ctx.clause)} --execute`) },
      ];
  }
}

/** A shell word: single quotes unless the text has one, then double quotes with $ ` " \ escaped. */
export function quote(text: string): string {
  if (/^[\w@%+=:,./-]+$/.test(text)) return text;
  if (!text.includes("'")) return `'${text}'`;
  return `"${text.replace(/["$`\\]/g, '\\$&')}"`;
}
