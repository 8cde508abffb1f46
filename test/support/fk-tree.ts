import type mysql from 'mysql2/promise';
import { mysqlPlainUrl, mysqlUrl } from './mysql.js';

/** The servers the foreign key tests run on: the binlog ones, and the plain one (no binlog: trigger capture). */
export const fkServers = [
  { name: 'binlog', url: mysqlUrl },
  { name: 'plain (trigger capture)', url: mysqlPlainUrl },
];

/**
 * A parent and two children, one ON DELETE CASCADE and one RESTRICT, and a mirror of all three that
 * receives the same writes. The tables are `<parent>`, `<parent>_cc`, `<parent>_cr`; the mirror's add `_m`.
 */
export function fkTree(parent: string) {
  const tree = (p: string) => ({ parent: p, cascade: `${p}_cc`, restrict: `${p}_cr` });
  const real = tree(parent);
  const mirror = tree(`${parent}_m`);
  const all = [
    real.cascade,
    real.restrict,
    `${real.restrict}__old`,
    mirror.cascade,
    mirror.restrict,
    real.parent,
    `${real.parent}__old`,
    `${real.parent}__new`,
    mirror.parent,
  ];
  return { real, mirror, all };
}

export type FkTree = ReturnType<typeof fkTree>;

/** Whatever a test left, in any order. */
export async function dropFkTree(db: mysql.Pool, t: FkTree): Promise<void> {
  await db.query(`SET foreign_key_checks = 0; DROP TABLE IF EXISTS ${t.all.map((n) => `\`${n}\``).join(', ')}; SET foreign_key_checks = 1`);
}

export async function createFkTree(db: mysql.Pool, t: FkTree, rows: number): Promise<void> {
  await dropFkTree(db, t);
  for (const side of [t.real, t.mirror]) {
    await db.query(`CREATE TABLE ${side.parent} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20)) ENGINE=InnoDB`);
    await db.query(`INSERT INTO ${side.parent} SELECT seq, seq % 97, CONCAT('n', seq) FROM seq_1_to_${rows}`);
    await db.query(`CREATE TABLE ${side.cascade} (id INT PRIMARY KEY, pid INT NOT NULL, w INT NOT NULL,
      CONSTRAINT ${side.cascade}_fk FOREIGN KEY (pid) REFERENCES ${side.parent} (id) ON DELETE CASCADE) ENGINE=InnoDB`);
    await db.query(`CREATE TABLE ${side.restrict} (id INT PRIMARY KEY, pid INT NULL, w INT NOT NULL,
      CONSTRAINT ${side.restrict}_fk FOREIGN KEY (pid) REFERENCES ${side.parent} (id)) ENGINE=InnoDB`);
    await db.query(`INSERT INTO ${side.cascade} SELECT seq, 1 + seq % ${rows}, 0 FROM seq_1_to_${Math.ceil(rows / 2)}`);
    await db.query(`INSERT INTO ${side.restrict} SELECT seq, 1 + (seq * 7) % ${rows}, 0 FROM seq_1_to_${Math.ceil(rows / 4)}`);
  }
}

/** One write: `{p}`, `{cc}`, `{cr}` stand for a side's parent and children. */
function nextWrite(rows: number, fresh: () => number): { sql: string; values: number[] } {
  const id = () => 1 + Math.floor(Math.random() * (rows + 200));
  const r = Math.random();
  if (r < 0.2) return { sql: 'UPDATE {p} SET v = v + 1 WHERE id = ?', values: [id()] };
  if (r < 0.3) return { sql: 'DELETE FROM {p} WHERE id = ?', values: [id()] };
  if (r < 0.4) return { sql: "INSERT INTO {p} (id, v, note) VALUES (?, 1, 'new')", values: [fresh()] };
  if (r < 0.55) return { sql: 'INSERT INTO {cc} (id, pid, w) VALUES (?, ?, 1)', values: [fresh(), id()] };
  if (r < 0.7) return { sql: 'INSERT INTO {cr} (id, pid, w) VALUES (?, ?, 1)', values: [fresh(), id()] };
  if (r < 0.8) return { sql: 'UPDATE {cc} SET w = w + 1, pid = ? WHERE id = ?', values: [id(), id()] };
  if (r < 0.9) return { sql: 'DELETE FROM {cr} WHERE pid = ?', values: [id()] };
  return { sql: 'UPDATE {cr} SET pid = NULL WHERE pid = ?', values: [id()] };
}

/**
 * One writer, each write made on the tree and then on its mirror: the outcome must be the same on
 * both (done, or refused by the same foreign key rule). A write the tree and its mirror judged
 * differently is a key that was not enforced as it should be, and is reported.
 */
export class FkTreeWriter {
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private next = 1_000_000;
  readonly stats = { writes: 0, refused: 0, mismatches: [] as string[], errors: [] as string[] };

  constructor(
    private readonly db: mysql.Pool,
    private readonly t: FkTree,
    private readonly rows: number,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<FkTreeWriter['stats']> {
    this.running = false;
    await this.loop;
    return this.stats;
  }

  private async run(): Promise<void> {
    const conn = await this.db.getConnection();
    try {
      while (this.running) {
        const w = nextWrite(this.rows, () => this.next++);
        const outcomes: string[] = [];
        for (const side of [this.t.real, this.t.mirror]) {
          const sql = w.sql.replaceAll('{p}', side.parent).replaceAll('{cc}', side.cascade).replaceAll('{cr}', side.restrict);
          outcomes.push(
            await conn.query(sql, w.values).then(
              () => 'ok',
              (e: { errno?: number; message: string }) => (e.errno === 1451 || e.errno === 1452 ? `refused ${e.errno}` : `error ${e.message}`),
            ),
          );
        }
        this.stats.writes++;
        if (outcomes[0].startsWith('refused')) this.stats.refused++;
        if (outcomes.some((o) => o.startsWith('error'))) this.stats.errors.push(outcomes.join(' / '));
        else if (outcomes[0] !== outcomes[1]) this.stats.mismatches.push(`${w.sql} ${w.values.join(',')}: ${outcomes.join(' vs ')}`);
        // Well under 200 writes a second.
        await new Promise((r) => setTimeout(r, 8));
      }
    } finally {
      conn.release();
    }
  }
}

/** The table each child key references now, by child table. */
export async function childParents(db: mysql.Pool, t: FkTree): Promise<Record<string, string>> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    `SELECT TABLE_NAME t, REFERENCED_TABLE_NAME r FROM information_schema.REFERENTIAL_CONSTRAINTS
      WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?)`,
    [t.real.cascade, t.real.restrict],
  );
  return Object.fromEntries(rows.map((r) => [String(r.t), String(r.r)]));
}
