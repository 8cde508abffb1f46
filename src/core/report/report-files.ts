import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { shownText } from './shown-text.js';

/**
 * How reports and the history's markdown are written, shared by core/history and operator/report.
 * These files hold table names, ALTER text and error text that someone else may have chosen (a table
 * named `<img onerror=...>` is legal in PostgreSQL), and they are opened in markdown viewers that
 * render HTML. So every such string goes through markdownText (control and bidi characters as
 * shown-text.ts shows them, then markup), and the files are the run's user's
 * alone: an error may quote what the database said about its data.
 */

/** Files are readable by the run's OS user alone; a directory shadowcut makes, likewise. */
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

/** Makes `dir` (and any missing parents) private; one that exists is left as its owner set it. */
export async function reportDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
}

/** A new file, never over another (`wx`), mode 0600. */
export async function writeNewFile(file: string, content: string): Promise<void> {
  await writeFile(file, content, { flag: 'wx', mode: FILE_MODE });
}

/** Appends, creating the file with mode 0600 when it is new. */
export async function appendPrivate(file: string, content: string): Promise<void> {
  await appendFile(file, content, { mode: FILE_MODE });
}

/** What markdown or HTML would read as syntax: markup, entities, code spans, links, escapes, table cells. */
const SYNTAX: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  '`': '&#96;',
  '|': '&#124;',
  '\\': '&#92;',
  '[': '&#91;',
  ']': '&#93;',
};

/**
 * A string shown as text in markdown: a heading, a paragraph or a table cell. Nothing in it can
 * become HTML, a code span, a link or a new cell, and it stays on one line. (A pipe becomes an
 * entity rather than `\|`, which a backslash before it would undo.) Inside a fenced code block
 * nothing is read as markup: put long text there instead, behind a fence longer than its backticks.
 */
export function markdownText(text: string): string {
  // A tab is whitespace to a markdown reader, as a line break is: a space, not an escape.
  return shownText(text.replace(/\s*[\r\n]\s*/g, ' ').replace(/\t/g, ' ')).replace(/[&<>"`|\\[\]]/g, (c) => SYNTAX[c]);
}
