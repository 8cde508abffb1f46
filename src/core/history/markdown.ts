import { stat } from 'node:fs/promises';
import path from 'node:path';
import { appendPrivate, markdownText, reportDir } from '../report/report-files.js';
import type { HistoryEntry } from '../engine/ports/history.js';

/** The timeline as a markdown table, the form a runbook or a change ticket takes, one line each. */
export function timeline(table: string, entries: HistoryEntry[]): string[] {
  return [...heading(table).split('\n'), ...entries.map(row)];
}

/** Appends one stage to `<dir>/shadowcut-<table>-history.md`, writing the heading first; returns the file. */
export async function appendMarkdown(dir: string, entry: HistoryEntry): Promise<string> {
  await reportDir(dir);
  const file = path.resolve(dir, `shadowcut-${entry.table.replace(/[^A-Za-z0-9._-]/g, '_')}-history.md`);
  const exists = await stat(file).then(
    () => true,
    () => false,
  );
  await appendPrivate(file, (exists ? '' : heading(entry.table) + '\n') + row(entry) + '\n');
  return file;
}

function heading(table: string): string {
  return [
    `# ${markdownText(table)}: schema change history`,
    '',
    '| started (UTC) | took | command | stage | outcome | rows | notes | by |',
    '|---|--:|---|---|---|--:|---|---|',
  ].join('\n');
}

function row(e: HistoryEntry): string {
  const took = ((Date.parse(e.finishedAt) - Date.parse(e.startedAt)) / 1000).toFixed(1) + ' s';
  const notes = [...e.checks, ...e.summary].join('; ');
  // Every field as text: a history row read back from the table may have been written by someone else.
  const cells = [e.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ''), took, e.command, e.stage, e.outcome, String(e.rowsTouched), notes, e.by];
  return `| ${cells.map(markdownText).join(' | ')} |`;
}
