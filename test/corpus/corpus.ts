/**
 * Reads gh-ost's localtests corpus (one folder per case) at run time and turns each case's gh-ost
 * flags into shadowcut arguments. Nothing of the corpus is copied into the project.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface CaseDef {
  name: string;
  dir: string;
  createSql: string;
  /** The ALTER clause: from --alter, else gh-ost's harness default `engine=innodb`. */
  alter: string;
  /** gh-ost flags as parsed from extra_args, in order. */
  flags: Flag[];
  expectFailure: string | null;
  ignoreVersions: string | null;
  origColumns: string;
  ghostColumns: string;
  orderBy: string | null;
  sqlMode: string | null;
  gtidMode: string | null;
  expectTableStructure: string | null;
  beforeSql: string | null;
  afterSql: string | null;
  destroySql: string | null;
  /** The case replaces gh-ost's harness flow with its own test.sh. */
  customScript: string | null;
}

export interface Flag {
  name: string;
  value: string | null;
}

/** gh-ost flags that take a value (the `--flag value` form is only legal for these). */
const VALUE_FLAGS = new Set([
  'alter',
  'chunk-size',
  'default-retries',
  'throttle-query',
  'postpone-cut-over-flag-file',
  'trigger-suffix',
  'checkpoint-seconds',
  'nice-ratio',
  'throttle-flag-file',
  'storage-engine',
  'database',
  'table',
]);

export type FlagTreatment = 'mapped' | 'implicit' | 'emulated' | 'ignored' | 'unsupported';

/**
 * What each gh-ost flag of the corpus becomes. This table is also rendered into the README and
 * docs/gh-ost-corpus.md, so the reasons are written for the reader.
 */
export const FLAG_TABLE: Record<string, { treatment: FlagTreatment; how: string }> = {
  alter: {
    treatment: 'mapped',
    how: "`--alter` (same clause). Without it the harness default `engine=innodb` is used, as gh-ost's test.sh passes `--alter='engine=innodb'` before the case's own flags.",
  },
  'approve-renamed-columns': {
    treatment: 'implicit',
    how: 'shadowcut reads `CHANGE old new` / `RENAME COLUMN` itself and maps the renamed column; there is no approval step.',
  },
  'panic-on-warnings': {
    treatment: 'implicit',
    how: 'shadowcut never uses INSERT IGNORE: a row the new schema rejects (duplicate key, truncation under strict mode) fails the statement and the run.',
  },
  'default-retries': {
    treatment: 'ignored',
    how: "no per-statement retry count in shadowcut: a failing copy/apply statement stops the run at once (only lock waits are retried, `--cutover-attempts`). The expected outcome (the run aborts with the server's error) is the same.",
  },
  'chunk-size': { treatment: 'ignored', how: 'shadowcut sizes chunks by time (`--chunk-time-ms`), not by rows.' },
  'throttle-query': {
    treatment: 'ignored',
    how: 'no throttle query in shadowcut (it throttles on lag, load, a flag file, a window); the corpus query (`select false`) never throttles anyway.',
  },
  'analyze-ghost-table-before-cutover': { treatment: 'ignored', how: 'statistics only; does not change data. shadowcut has no such step.' },
  'attempt-instant-ddl': {
    treatment: 'ignored',
    how: 'the corpus runs shadowcut with --force-copy, so it always builds and copies a shadow table; the case still checks that the copy is exact.',
  },
  'allow-zero-in-date': {
    treatment: 'ignored',
    how: "shadowcut keeps the server's global sql_mode in its sessions (plus NO_AUTO_VALUE_ON_ZERO); MariaDB's default sql_mode has no NO_ZERO_DATE/NO_ZERO_IN_DATE, so zero dates are accepted without a flag.",
  },
  'discard-foreign-keys': {
    treatment: 'mapped',
    how: "shadowcut's `--discard-foreign-keys`: a table with foreign keys to other tables is migrated, and the new table has none (tables referenced by others stay refused).",
  },
  gtid: { treatment: 'ignored', how: 'shadowcut positions its binlog reader by file/offset; MariaDB always has GTIDs, so the case runs as an ordinary one.' },
  'postpone-cut-over-flag-file': {
    treatment: 'mapped',
    how: "shadowcut's `--postpone-cutover-flag-file` (when its --help lists it; else the runner holds a metadata lock on the table instead): the runner injects the case's DML once the copy is done and removes the file 5 s later.",
  },
  'checkpoint-seconds': {
    treatment: 'emulated',
    how: 'gtid-resume only: the runner kills shadowcut (SIGKILL) during the copy and reruns it with `--resume` if shadowcut offers that flag; otherwise the case is skipped.',
  },
  'nice-ratio': { treatment: 'ignored', how: "gtid-resume only (stretches gh-ost's copy); shadowcut has no nice ratio." },
  'include-triggers': {
    treatment: 'mapped',
    how: "shadowcut's `--include-triggers`: the triggers are created on the new table under the cut-over lock, after the last changes are applied, so they never fire for shadowcut's own writes.",
  },
  'trigger-suffix': { treatment: 'mapped', how: "shadowcut's `--trigger-suffix` (same meaning: the new table's trigger names carry it)." },
  'remove-trigger-suffix-if-exists': { treatment: 'mapped', how: "shadowcut's `--remove-trigger-suffix-if-exists` (same meaning)." },
};

/** Splits a shell command line into words the way bash would for the simple quoting gh-ost's files use. */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unbalanced ' in: ${text}`);
      word += text.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (ch === '"') {
      i++;
      for (; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) i++;
        word += text[i];
      }
      if (i >= text.length) throw new Error(`unbalanced " in: ${text}`);
      inWord = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

export function parseFlags(text: string): Flag[] {
  const words = shellWords(text);
  const flags: Flag[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (!w.startsWith('--')) throw new Error(`unexpected word "${w}" in extra_args`);
    const eq = w.indexOf('=');
    if (eq > 0) {
      flags.push({ name: w.slice(2, eq), value: w.slice(eq + 1) });
    } else if (VALUE_FLAGS.has(w.slice(2)) && i + 1 < words.length && !words[i + 1].startsWith('--')) {
      flags.push({ name: w.slice(2), value: words[++i] });
    } else {
      flags.push({ name: w.slice(2), value: null });
    }
  }
  return flags;
}

function optional(dir: string, file: string): string | null {
  const path = join(dir, file);
  return existsSync(path) ? readFileSync(path, 'utf8') : null;
}

export function readCase(dir: string, name: string): CaseDef {
  const caseDir = join(dir, name);
  const extra = optional(caseDir, 'extra_args') ?? '';
  const flags = parseFlags(extra.trim());
  const alterFlag = [...flags].reverse().find((f) => f.name === 'alter');
  const trimmed = (s: string | null) => (s === null ? null : s.trim());
  const expect = optional(caseDir, 'expect_failure');
  return {
    name,
    dir: caseDir,
    createSql: readFileSync(join(caseDir, 'create.sql'), 'utf8'),
    alter: alterFlag?.value ?? 'engine=innodb',
    flags,
    // An empty expect_failure file means "any failure" in gh-ost's harness.
    expectFailure: expect === null ? null : expect.trim(),
    ignoreVersions: trimmed(optional(caseDir, 'ignore_versions')),
    origColumns: trimmed(optional(caseDir, 'orig_columns')) || '*',
    ghostColumns: trimmed(optional(caseDir, 'ghost_columns')) || '*',
    orderBy: trimmed(optional(caseDir, 'order_by')) || null,
    // An empty sql_mode file is meaningful: it sets sql_mode to ''.
    sqlMode: optional(caseDir, 'sql_mode')?.replace(/\r?\n/g, '').trim() ?? null,
    gtidMode: trimmed(optional(caseDir, 'gtid_mode')),
    expectTableStructure: trimmed(optional(caseDir, 'expect_table_structure')),
    beforeSql: optional(caseDir, 'before.sql'),
    afterSql: optional(caseDir, 'after.sql'),
    destroySql: optional(caseDir, 'destroy.sql'),
    customScript: optional(caseDir, 'test.sh'),
  };
}

export function listCases(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => statSync(join(dir, n)).isDirectory() && existsSync(join(dir, n, 'create.sql')))
    .sort();
}

/**
 * gh-ost's harness: `echo "$version" | egrep -q "^${ignore_versions}"`, and the same on
 * version_comment case-insensitively. The flavour name is matched too, so "mariadb" skips on MariaDB
 * even where the version comment is a distribution's ("Debian 12").
 */
export function ignoredOn(ignore: string, version: string, comment: string, flavour: string): boolean {
  const re = new RegExp(`^${ignore}`);
  const rei = new RegExp(`^${ignore}`, 'i');
  return re.test(version) || rei.test(comment) || rei.test(flavour);
}

/**
 * SQL the custom test.sh of a case sends to the primary after the row copy, read from the script:
 * a heredoc (`gh-ost-test-mysql-master test << 'EOF' ... EOF`) or `-e "..."`.
 */
export function injectedSql(script: string): string | null {
  const heredoc = script.match(/gh-ost-test-mysql-master\s+\w+\s*<<\s*'?(\w+)'?\s*\n([\s\S]*?)\n\1\s*\n/);
  if (heredoc) return heredoc[2];
  const inline = script.match(/gh-ost-test-mysql-master\s+\w+\s+-e\s+"((?:[^"\\]|\\.)*)"/);
  if (inline) return inline[1].replace(/\\(["\\$`])/g, '$1');
  return null;
}
