import type { Pool, RowDataPacket } from 'mysql2/promise';

/**
 * A name as InnoDB's dictionary spells it (the server's file-name encoding): letters, digits and `_`
 * as they are, other ASCII as `@` and four hex digits. Null for non-ASCII, whose encoding differs.
 */
export function innodbSpelling(name: string): string | null {
  let out = '';
  for (const ch of name) {
    const code = ch.codePointAt(0)!;
    if (code > 127) return null;
    out += /[A-Za-z0-9_]/.test(ch) ? ch : `@${code.toString(16).padStart(4, '0')}`;
  }
  return out;
}

/**
 * The InnoDB ids of a table and its partitions, as one text, or null when they cannot be read (no
 * PROCESS privilege, a name InnoDB spells otherwise). TRUNCATE and every rebuild give new ids.
 */
export async function innodbTableIdentity(db: Pool, flavor: 'mariadb' | 'mysql', database: string, table: string): Promise<string | null> {
  const name = [innodbSpelling(database), innodbSpelling(table)];
  if (name.includes(null)) return null;
  const full = name.join('/');
  const like = full.replace(/[\\%_]/g, '\\$&');
  const view = flavor === 'mariadb' ? 'INNODB_SYS_TABLES' : 'INNODB_TABLES';
  const rows = await db
    .query<RowDataPacket[]>(`SELECT TABLE_ID AS id FROM information_schema.${view} WHERE NAME = ? OR NAME LIKE ? OR NAME LIKE ? ORDER BY TABLE_ID`, [
      full,
      `${like}#p#%`,
      `${like}#P#%`,
    ])
    .then(([r]) => r)
    // Without PROCESS the views refuse; anything else (a lost connection) is not an answer.
    .catch((error: { code?: string }) => (error.code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR' ? [] : Promise.reject(error)));
  return rows.length ? rows.map((r) => String(r.id)).join(',') : null;
}
