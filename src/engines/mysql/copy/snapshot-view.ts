import type { Connection, RowDataPacket } from 'mysql2/promise';
import { KeysetSql, type Fragment } from '../../../core/engine/keyset.js';
import type { Key, KeyRange, SnapshotView } from '../../../core/engine/types.js';
import { connectOne } from '../server/connect.js';
import type { MysqlTarget } from '../server/target.js';
import type { Copier } from './copy.js';
import type { MysqlPlan } from '../schema/plan.js';
import { hasCrc32c, MysqlView } from './checksum.js';
import { mysqlDialect } from '../server/sql.js';

/** Keys per statement when rows are compared by key. */
const KEYS_PER_READ = 1000;

/**
 * Whether the checksum's view can be opened with no lock. The proof needs every change outside the
 * original's snapshot to reach the applier only after the view's start. A trigger log has that on any
 * server (an entry is read once its writer commits). So does the binlog on MariaDB, whose consistent
 * snapshot is taken in the binlog's commit order; on MySQL an event can be read before its commit is
 * visible, which would only repair rows for nothing, but round after round under a busy table, so the
 * lock stays there. Kept too: on Galera (the gate holds every node), where changes cascade into the
 * table (its parents are held with it), and where a key column has no checksum rendering (the two
 * sides' rows are matched by the key's text).
 */
export function snapshotViewAllowed(plan: MysqlPlan, flavor: 'mariadb' | 'mysql', galera: boolean): boolean {
  if (galera || (plan.cascades?.length ?? 0) > 0) return false;
  if (flavor !== 'mariadb' && plan.log === undefined) return false;
  return keyTexts(plan) !== null;
}

/**
 * Opens the view of core/migrate/view.ts: the original's readers start their snapshot, `catchUp`
 * applies everything committed before it (and what came since), and only then does the shadow's
 * reader start its own. Writers are never held: the original's instant is its snapshot's.
 */
export async function openSnapshotView(target: MysqlTarget, plan: MysqlPlan, mover: Copier, catchUp: () => Promise<void>): Promise<SnapshotView> {
  const texts = keyTexts(plan)!;
  const readers: Connection[] = [];
  try {
    for (let i = 0; i < 3; i++) readers.push(await connectOne(target));
    for (const reader of readers) await reader.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const [original, shadow, boundaries] = readers;
    await original.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    await boundaries.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    await catchUp();
    await shadow.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    return new MysqlSnapshotView([original, shadow, boundaries] as const, plan, mover, texts, await hasCrc32c(original));
  } catch (error) {
    for (const reader of readers) reader.destroy();
    throw error;
  }
}

/** Each side's key as one text, from the checksum's own renderings of the key's columns (null if one has none). */
function keyTexts(plan: MysqlPlan): [string, string] | null {
  const pairs = plan.keyColumns.map((column) => plan.columns.find((c) => c.source === column)?.checksum ?? null);
  if (pairs.some((p) => p === null)) return null;
  // HEX keeps the separator out of the values: no two keys make one text.
  const text = (side: 0 | 1) => `CONCAT_WS('#', ${pairs.map((p) => `HEX(CONCAT(${p![side]}))`).join(', ')})`;
  return [text(0), text(1)];
}

/** MySQL's view, whose keys are compared side by side, each side in its own snapshot. */
class MysqlSnapshotView extends MysqlView implements SnapshotView {
  constructor(
    readers: readonly [Connection, Connection, Connection],
    plan: MysqlPlan,
    mover: Copier,
    private readonly keyText: [string, string],
    crc32c: boolean,
  ) {
    super(readers, plan, mover, crc32c);
  }

  override async compareKeys(keys: Key[]): Promise<Key[]> {
    const found: Key[] = [];
    for (let i = 0; i < keys.length; i += KEYS_PER_READ) {
      const batch = keys.slice(i, i + KEYS_PER_READ);
      found.push(...(await this.differing((keyset) => keyset.keyIn(batch))));
    }
    return found;
  }

  differingKeysIn(range: KeyRange): Promise<Key[]> {
    return this.differing((keyset) => keyset.range(range));
  }

  /** Each side's rows in its own snapshot, matched by the key's text and compared by a hash of the checksum's row text. */
  private async differing(filter: (keyset: KeysetSql) => Fragment): Promise<Key[]> {
    const [original, shadow] = await Promise.all([0, 1].map((i) => this.rows(i as 0 | 1, filter)));
    const found: Key[] = [];
    for (const [text, row] of original) {
      if (shadow.get(text)?.hash !== row.hash) found.push(row.key);
      shadow.delete(text);
    }
    for (const row of shadow.values()) found.push(row.key);
    return found;
  }

  private async rows(side: 0 | 1, filter: (keyset: KeysetSql) => Fragment): Promise<Map<string, { key: Key; hash: string }>> {
    const { table, keyColumns, text, where } = this.sides[side];
    const keyset = new KeysetSql(mysqlDialect, keyColumns);
    const f = filter(keyset);
    const columns = keyColumns.map((k) => mysqlDialect.ident(k)).join(', ');
    const [rows] = await this.readers[side].query<RowDataPacket[]>({
      sql: `SELECT ${this.keyText[side]}, SHA2(${text}, 256), ${columns} FROM ${table} WHERE ${f.sql}${where ? ` AND (${where})` : ''}`,
      values: f.params,
      rowsAsArray: true,
    });
    return new Map(rows.map((row) => [String(row[0]), { hash: String(row[1]), key: row.slice(2) as Key }]));
  }
}
