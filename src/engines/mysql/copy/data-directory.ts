import type { Pool, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../../core/engine/errors.js';
import { qualified } from '../server/sql.js';

/**
 * A table whose files live elsewhere than the server's data directory (`DATA DIRECTORY`, another
 * disk as a rule) keeps them there through a native ALTER. `CREATE TABLE ... LIKE` does not carry
 * the option and no ALTER can set it afterwards, so the shadow, made LIKE the table, is made again
 * from its own definition with the option added, while it is still empty.
 */

/** SHOW CREATE TABLE's table options are on its line that starts with the closing parenthesis. */
const OPTIONS_LINE = /^\).*$/m;
const DATA_DIRECTORY = /\sDATA DIRECTORY\s*=\s*'(?:[^'\\]|\\.|'')*'/i;
const COMMENT = /\sCOMMENT\s*=?\s*'(?:[^'\\]|\\.|'')*'/gi;

/**
 * The table's `DATA DIRECTORY='...'` clause as the server prints it, or null when its files are in
 * the data directory. A partitioned table's partitions name theirs one by one, which a copy made
 * LIKE it would lose: refused, with the way around.
 */
export function dataDirectoryOf(createSql: string, table: string): string | null {
  const options = OPTIONS_LINE.exec(createSql);
  if (!options) return null;
  // A comment may say anything, "DATA DIRECTORY=" included: read past them.
  const said = (text: string) => text.replace(COMMENT, '');
  const own = DATA_DIRECTORY.exec(said(options[0]))?.[0].trim() ?? null;
  if (own === null && DATA_DIRECTORY.test(said(createSql.slice(options.index + options[0].length)))) {
    throw new UserError(
      `${table}'s partitions keep their files in a DATA DIRECTORY of their own, which a copy would not keep: ` +
        'run the ALTER natively, or move the partitions into the data directory first',
    );
  }
  return own;
}

/** Makes the empty shadow again, as it is, with the original's `DATA DIRECTORY` clause. */
export async function placeLike(pool: Pool, database: string, shadow: string, clause: string): Promise<void> {
  const name = qualified(database, shadow);
  const [[row]] = await pool.query<RowDataPacket[]>(`SHOW CREATE TABLE ${name}`);
  const created = String(row['Create Table']);
  const options = OPTIONS_LINE.exec(created);
  if (!options) throw new Error(`SHOW CREATE TABLE ${name} has no table options line`);
  const at = options.index + options[0].length;
  await pool.query(`DROP TABLE ${name}`);
  await pool.query(`${created.slice(0, at)} ${clause}${created.slice(at)}`.replace(/^CREATE TABLE `(?:[^`]|``)*`/, `CREATE TABLE ${name}`));
}
