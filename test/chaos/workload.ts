/**
 * Concurrent writers for the whole run. Every transaction does the same to the table and to its
 * mirror, so the mirror is the truth a correct migration must reproduce: single and multi-row
 * transactions, inserts, updates of any column including the key, deletes, a unique value moved
 * from one row to another, rollbacks, bursts and quiet gaps.
 */
import type { ChaosDb, Session } from './database.js';
import { keyValues, parentColumns, rowValues, writable, type TableSpec } from './grammar.js';
import type { Prng } from './prng.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Workload {
  private running = true;
  private loops: Promise<void>[] = [];
  transactions = 0;
  failed = 0;
  /**
   * The longest a writer's statement on the table (or its COMMIT) took, in ms, and when it began (ms
   * since the writers started): what the application felt of the run, judged like the reader's wait.
   */
  longestMs = 0;
  longestAt = 0;
  private began = 0;

  /** Row numbers issued so far, per writer: writer w owns the rows numbered w (mod writers). */
  private issued: number[] = [];
  private writers = 3;
  /** The table's identity before the migration, and whether a writer has seen the new table. */
  private original = '';
  private swapSeen = false;

  constructor(
    private readonly db: ChaosDb,
    private readonly t: TableSpec,
    private readonly tables: [string, string],
    private readonly rows: number,
    /** Columns the writers never leave to the server's default (see README.md, the in-place rule). */
    private readonly explicit: ReadonlySet<string> = new Set(),
  ) {}

  /**
   * Writers touch disjoint rows. Two writers on one row would see it differently in the table and in
   * the mirror (on PostgreSQL each statement of a READ COMMITTED transaction takes its own snapshot,
   * and an insert committing between the two statements is seen by only one): the mirror would stop
   * being the truth.
   */
  async start(r: Prng, writers = 3): Promise<void> {
    this.original = await this.db.identity(this.tables[0]);
    this.began = performance.now();
    this.writers = writers;
    this.issued = Array.from({ length: writers }, () => this.rows);
    for (let w = 0; w < writers; w++) this.loops.push(this.loop(r.fork(100 + w), w));
  }

  /** A row number of writer w's, at most the last it issued. */
  private own(r: Prng, w: number): number {
    const n = w + this.writers * r.int(0, Math.floor((this.issued[w] - w) / this.writers));
    return n > 0 ? n : w + this.writers;
  }

  /** A row number writer w has never used. */
  private fresh(w: number): number {
    let n = this.issued[w] + 1;
    while (n % this.writers !== w) n++;
    return (this.issued[w] = n);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private where(n: number): string {
    const values = keyValues(this.t, n);
    return this.t.key.map((c, i) => `${this.id(c.name)} = ${values[i]}`).join(' AND ');
  }

  private id(name: string): string {
    return this.db.kind === 'mysql' ? `\`${name}\`` : `"${name}"`;
  }

  /** Statements of one transaction, `{t}` for the table; the unique move reads the table first. */
  private async transaction(r: Prng, session: Session, w: number): Promise<string[]> {
    const ops: string[] = [];
    const count = r.chance(0.25) ? r.int(2, 5) : 1;
    const columns = writable(this.t).filter((c) => !this.t.key.includes(c) && c.name !== this.t.unique);
    for (let i = 0; i < count; i++) {
      const n = this.own(r, w);
      // Drawn only for a parent, so a seed without children writes what it always wrote.
      if (this.t.children && r.chance(0.35)) {
        ops.push(this.childWrite(r, w, n));
        continue;
      }
      if (this.t.parentKey && r.chance(0.3)) {
        ops.push(this.parentWrite(r, w, n));
        continue;
      }
      const kind = r.next();
      if (kind < 0.3) {
        const fresh = this.fresh(w);
        ops.push(
          `INSERT INTO {t} (${writable(this.t)
            .map((c) => this.id(c.name))
            .join(', ')}) VALUES (${rowValues(r, this.t, fresh, this.explicit).join(', ')})`,
        );
      } else if (kind < 0.6 && columns.length) {
        const c = r.pick(columns);
        const value = c.nullable && r.chance(0.2) ? 'NULL' : c.type.value(r, n);
        ops.push(`UPDATE {t} SET ${this.id(c.name)} = ${value} WHERE ${this.where(n)}`);
      } else if (kind < 0.72) {
        // The key moves: to a fresh row number's key, so it never collides.
        const fresh = this.fresh(w);
        const last = this.t.key[this.t.key.length - 1];
        ops.push(`UPDATE {t} SET ${this.id(last.name)} = ${keyValues(this.t, fresh)[this.t.key.length - 1]} WHERE ${this.where(n)}`);
      } else if (kind < 0.85) {
        ops.push(`DELETE FROM {t} WHERE ${this.where(n)}`);
      } else if (this.t.unique) {
        const from = this.own(r, w);
        const [[value]] = (await session.query(`SELECT ${this.id(this.t.unique)} FROM ${this.id(this.tables[0])} WHERE ${this.where(from)}`)).concat([[null]]);
        if (value === null || value === undefined) continue;
        ops.push(`UPDATE {t} SET ${this.id(this.t.unique)} = NULL WHERE ${this.where(from)}`);
        ops.push(`UPDATE {t} SET ${this.id(this.t.unique)} = ${String(value)} WHERE ${this.where(n)}`);
      }
    }
    return ops;
  }

  /**
   * A write to a child of row n (one the parent may have lost: the key refuses it on both sides alike,
   * and the transaction rolls back whole): a new child, a child moved to row n, or row n's children of
   * the RESTRICT key deleted or let go.
   */
  private childWrite(r: Prng, w: number, n: number): string {
    const child = r.chance(0.5) ? '{t}_cc' : '{t}_cr';
    const key = keyValues(this.t, n);
    const columns = parentColumns(this.t).map((c) => this.id(c));
    const at = columns.map((c, i) => `${c} = ${key[i]}`);
    const kind = r.next();
    if (kind < 0.5) return `INSERT INTO ${child} (id, ${columns.join(', ')}, w) VALUES (${this.fresh(w)}, ${key.join(', ')}, 1)`;
    if (kind < 0.7) return `UPDATE ${child} SET w = w + 1, ${at.join(', ')} WHERE id = ${this.own(r, w)}`;
    if (kind < 0.85) return `DELETE FROM {t}_cr WHERE ${at.join(' AND ')}`;
    return `UPDATE {t}_cr SET ${columns.map((c) => `${c} = NULL`).join(', ')} WHERE ${at.join(' AND ')}`;
  }

  /**
   * A write about the table's own key to its parent (`parentKey`): a parent added, row n pointed at a
   * parent or at none, or a parent deleted. Writer w uses the parents numbered w (mod writers), so
   * writers never race for one. A parent missing, or deleted while a row points at it, is refused
   * by the key on both sides alike, and the transaction rolls back whole; unless the key cascades
   * (`parentCascade`), when the server deletes the rows or clears their pa_id, on both sides alike.
   */
  private parentWrite(r: Prng, w: number, n: number): string {
    const parent = w + this.writers * r.int(1, 30);
    const kind = r.next();
    if (kind < 0.25) return `INSERT INTO {t}_pa (id) VALUES (${parent})`;
    if (kind < 0.75) return `UPDATE {t} SET pa_id = ${r.chance(0.15) ? 'NULL' : parent} WHERE ${this.where(n)}`;
    return `DELETE FROM {t}_pa WHERE id = ${parent}`;
  }

  /**
   * Whether this transaction writes to the new table. The mirror takes the native ALTER only at the
   * end, so a row written after the swap would be converted differently: an INSERT ... DEFAULT gets
   * the new default here and the old one there, a USING expression applies there and not here. Only
   * deletes mean the same on both sides, so a transaction after the swap keeps only its deletes.
   * A statement on the table first, so its lock keeps the answer true until the commit (a swap has
   * to wait for it).
   */
  private async swapped(session: Session): Promise<boolean> {
    if (this.swapSeen) return true;
    await this.timed(() => session.query(`DELETE FROM ${this.id(this.tables[0])} WHERE 1 = 0`));
    this.swapSeen = (await this.db.identity(this.tables[0])) !== this.original;
    return this.swapSeen;
  }

  /** Runs a write of the table's, keeping the longest it took, failed or not (a lock wait may end in an error). */
  private async timed<T>(write: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await write();
    } finally {
      const took = performance.now() - start;
      // A write that met the tester's own restart of the server waited for the restart, not for the run.
      const metRestart = this.db.own?.outages.covers(start, start + took) ?? false;
      if (!metRestart && took > this.longestMs) Object.assign(this, { longestMs: Math.round(took), longestAt: Math.round(start - this.began) });
    }
  }

  private async loop(r: Prng, w: number): Promise<void> {
    const session = await this.db.session();
    try {
      while (this.running) {
        try {
          await session.query('BEGIN');
          let statements = await this.transaction(r, session, w);
          if (await this.swapped(session)) statements = statements.filter((s) => s.startsWith('DELETE'));
          for (const statement of statements) {
            for (const table of this.tables) {
              const run = () => session.query(statement.replaceAll('{t}_', `${table}_`).replaceAll('{t}', this.id(table)));
              await (table === this.tables[0] ? this.timed(run) : run());
            }
          }
          const end = r.chance(0.05) ? 'ROLLBACK' : 'COMMIT';
          await this.timed(() => session.query(end));
          this.transactions++;
        } catch {
          // A deadlock, a duplicate, a value the column refuses: neither table keeps any of it.
          this.failed++;
          await session.query('ROLLBACK').catch(() => {});
        }
        // Bursts (no pause), steady writes, and now and then a quiet gap.
        await sleep(r.chance(0.3) ? 0 : r.chance(0.05) ? r.int(300, 800) : r.int(5, 40));
      }
    } finally {
      await session.close();
    }
  }
}
