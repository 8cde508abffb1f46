/**
 * Query events in the binlog: the ones that touch the migrated table. In ROW format a write to the
 * table arrives as row events; a statement naming the table means either someone else's DDL, or a
 * write logged as a statement (a session with binlog_format STATEMENT or MIXED, e.g. opened before
 * `SET GLOBAL binlog_format=ROW`). Neither can be turned into keys, and skipping it would lose the
 * change silently, so both stop the run.
 */
export type Touch = 'ddl' | 'write';

/** Transaction control carries no table name and is the bulk of query events. */
const CONTROL = /^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|XA)\b/i;
/** Statements that may name the table without changing its rows or its definition. */
const HARMLESS = /^(ANALYZE|CHECK|CHECKSUM|GRANT|REVOKE|FLUSH)\b/i;
const DDL = /^(ALTER|DROP|TRUNCATE|RENAME|OPTIMIZE|REPAIR|CREATE)\b/i;

/**
 * How `query` (run with `schema` as its default database) touches `database.table`, or null.
 * Names are compared without regard to case, as with lower_case_table_names: a false alarm stops a
 * run safely, a miss would not.
 */
export function touches(query: string, schema: string | undefined, database: string, table: string): Touch | null {
  const text = withoutComments(query).trim();
  if (CONTROL.test(text) || HARMLESS.test(text)) return null;
  // CREATE changes an existing table only as CREATE INDEX/TRIGGER ... ON it; a new table or view
  // may name ours (LIKE, SELECT) only to read it. Our own probes are created that way.
  const scope = /^CREATE\b/i.test(text) ? afterOn(text) : text;
  if (scope === null) return null;
  // A name as a whole identifier, optionally quoted, optionally qualified by a (quoted) database.
  const name = `(?:\`${escape(table.replace(/`/g, '``'))}\`|(?<![\\w$\`])${escape(table)}(?![\\w$]))`;
  const qualifier = `(?:(\`(?:[^\`]|\`\`)+\`|[\\w$]+)\\s*\\.\\s*)?`;
  const pattern = new RegExp(`${qualifier}${name}`, 'gi');
  for (const match of scope.matchAll(pattern)) {
    // `other.table` qualified by a database is someone else's table; a bare name is in the default one.
    if (scope[match.index - 1] === '.') continue;
    const db = match[1] === undefined ? schema : unquote(match[1]);
    if (db !== undefined && db.toLowerCase() === database.toLowerCase()) return DDL.test(text) ? 'ddl' : 'write';
  }
  return null;
}

/** `user@host` of a DEFINER clause, either part quoted (and then possibly holding spaces). */
const ACCOUNT = "(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|[^\\s@`']+)(?:\\s*@\\s*(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|[^\\s`']+))?";
/** MariaDB's binlog spells CREATE OR REPLACE TRIGGER as `CREATE OR REPLACE DEFINER=... TRIGGER`. */
const INDEX_OR_TRIGGER = new RegExp(
  `^CREATE\\s+(?:OR\\s+REPLACE\\s+)?(?:DEFINER\\s*=\\s*${ACCOUNT}\\s+)?(?:UNIQUE\\s+|FULLTEXT\\s+|SPATIAL\\s+|OR\\s+REPLACE\\s+)*(?:INDEX|TRIGGER)\\b`,
  'i',
);

function afterOn(text: string): string | null {
  if (!INDEX_OR_TRIGGER.test(text)) return null;
  const on = /\sON\s/i.exec(text);
  return on ? text.slice(on.index) : null;
}

/**
 * Comments left out, but not the text of an executable one (`/*!40000 ... *\/`, MariaDB's
 * `/*M!100500 ... *\/`), which a server of that version or later runs as part of the statement.
 */
function withoutComments(sql: string): string {
  return sql
    .replace(/\/\*M?!\d*([\s\S]*?)\*\//g, ' $1 ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/(^|\s)(--\s|#)[^\n]*/g, ' ');
}

function unquote(identifier: string): string {
  return identifier.startsWith('`') ? identifier.slice(1, -1).replace(/``/g, '`') : identifier;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
