import type pg from 'pg';
import { backoffMs } from '../../../../core/engine/retry/backoff.js';
import { retryBounded } from '../../../../core/engine/retry/retry.js';
import { UserError } from '../../../../core/engine/errors.js';
import type { Key, Session } from '../../../../core/engine/contract-values.js';
import type { Horizon, LogEntry, TriggerLog } from '../../../../core/engine/capture/trigger-source.js';
import { asLockTimeout, isLockNotAvailable } from '../../server/errors.js';
import { helperNames } from '../../server/helper-names.js';
import { ident, isTrue, qualified } from '../../server/sql.js';
import { PgSession, type Client } from '../../server/connect.js';
import { checkHelper, dropOwnHelper, ensureHelperTableIn, helperTransaction } from '../../server/helper-tables.js';
import { captureFunctionSql, keyTypes, refuseForeignFunction } from './capture-function.js';
import { givenOwnerSql, giveToOwner } from '../owner-function.js';

/** What each capture trigger (helperNames' `captureTriggers`, in that order) fires on: row triggers, and TRUNCATE per statement. */
const EVENTS = ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'] as const;
/** Lock wait of each attempt to drop the triggers (DROP TRIGGER locks out readers too), and attempts. */
const UNINSTALL_LOCK_TIMEOUT_MS = 1000;
const UNINSTALL_ATTEMPTS = 30;
/** Up to this many log entries are counted; a longer log is estimated. */
const EXACT_PENDING = 100_000;

/** The log table, the function and the triggers (in EVENTS' order) of one capture. */
export interface CaptureNames {
  log: string;
  captureFunction: string;
  captureTriggers: string[];
}

/**
 * PostgreSQL's side of trigger capture (README.md here): `<table>__log`, one row per row change
 * with the old key (`o_*`) and, when an UPDATE moved it, the new key (`n_*`), filled by a
 * SECURITY DEFINER function of the table's owner (`../owner-function.ts`) that the triggers call.
 * A revert window's capture is the same with other names (helperNames' `reverseCapture`), on the
 * new table.
 */
export class PgTriggerLog implements TriggerLog {
  readonly name: string;
  private readonly table: string;
  private readonly log: string;
  private readonly fn: string;
  /** The table whose owner the function is given to, as text for to_regclass. */
  private readonly ownerTable: string;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    /** The table the triggers are on now (a revert window's are installed on the shadow, which the swap renames). */
    private readonly tableName: string,
    /** Its key columns, in key order (PgDetail.originalKey); unused by uninstall. */
    private readonly key: string[],
    private readonly names: CaptureNames = helperNames(schema, tableName),
    /**
     * The table whose owner owns the function: the table itself, or for a revert window's capture
     * on the shadow, the original, whose owner the new table takes at the swap.
     */
    ownerTable: string = tableName,
  ) {
    this.table = qualified(schema, tableName);
    this.ownerTable = qualified(schema, ownerTable);
    this.log = qualified(schema, this.names.log);
    this.fn = qualified(schema, this.names.captureFunction);
    this.name = `${schema}.${this.names.log}`;
  }

  async install(lockTimeoutMs: number): Promise<void> {
    await helperTransaction(this.pool, async (client) => {
      await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
      const { rows } = await client.query('SELECT $1::regclass::oid AS oid', [this.table]);
      const oid = Number(rows[0].oid);
      const types = await keyTypes(client, oid, this.key, this.schema, this.tableName);
      const columns = [
        'seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY',
        'truncated boolean NOT NULL DEFAULT false',
        ...types.map((t, i) => `o_${i + 1} ${t}`),
        ...types.map((t, i) => `n_${i + 1} ${t}`),
      ];
      // The table owner's capture function writes the log: the INSERT shadowcut gives that owner below is expected on it.
      await ensureHelperTableIn(
        client,
        this.schema,
        this.names.log,
        columns.join(', '),
        `changes to ${this.schema}.${this.tableName} during a migration`,
        this.ownerTable,
      );
      await refuseForeignFunction(client, this.schema, this.names.captureFunction, this.ownerTable);
      const partitions = await this.partitions(client);
      await client.query(
        captureFunctionSql(
          this.fn,
          this.log,
          this.key,
          oid,
          partitions.map((p) => p.oid),
        ),
      );
      // Functions are executable by PUBLIC when made; the triggers need no grant (EXECUTE is checked when one is created).
      await client.query(`REVOKE ALL ON FUNCTION ${this.fn}() FROM PUBLIC`);
      // The identity column needs no right on its sequence: INSERT on the columns the body names is all.
      const written = ['truncated', ...types.flatMap((_, i) => [`o_${i + 1}`, `n_${i + 1}`])];
      const ownerOid = Number((await client.query('SELECT $1::regclass::oid AS oid', [this.ownerTable])).rows[0].oid);
      await giveToOwner(client, `${this.fn}()`, ownerOid, [`INSERT (${written.join(', ')}) ON ${this.log}`]);
      for (const [i, name] of this.names.captureTriggers.entries()) {
        const each = EVENTS[i] === 'TRUNCATE' ? 'STATEMENT' : 'ROW';
        // Row triggers of a partitioned table are cloned onto its partitions; a TRUNCATE of one
        // partition fires that partition's statement triggers only, so each gets its own.
        for (const table of EVENTS[i] === 'TRUNCATE' ? [this.table, ...partitions.map((p) => qualified(this.schema, p.name))] : [this.table]) {
          await client.query(`CREATE TRIGGER ${ident(name)} AFTER ${EVENTS[i]} ON ${table} FOR EACH ${each} EXECUTE FUNCTION ${this.fn}()`);
          // Fired for sessions with session_replication_role = replica too (logical subscribers, some loaders).
          await client.query(`ALTER TABLE ${table} ENABLE ALWAYS TRIGGER ${ident(name)}`);
        }
      }
    }).catch((error) => {
      throw asLockTimeout(error, 'creating the capture triggers');
    });
  }

  async verifyInstalled(): Promise<void> {
    const lost = (what: string) =>
      new UserError(
        `the change log of the interrupted run is not in place (${what}): changes made since it stopped may be lost; ` +
          `run shadowcut cleanup --table ${this.schema}.${this.tableName} and start again`,
      );
    const present = await helperTransaction(this.pool, (client) => checkHelper(client, this.schema, this.names.log, this.ownerTable));
    if (!present) throw lost(`${this.name} is missing`);
    const [first] = await this.missingTriggers(this.pool);
    if (first) throw lost(`trigger ${first.name} on ${first.table} ${first.why}`);
  }

  /** The log and every trigger in place and shadowcut's own: installing again has nothing to do. */
  async isInstalled(): Promise<boolean> {
    const present = await helperTransaction(this.pool, (client) => checkHelper(client, this.schema, this.names.log, this.ownerTable));
    return present && (await this.missingTriggers(this.pool)).length === 0;
  }

  /** The capture triggers not in place (on the table, or TRUNCATE's on one of its partitions), each with why. */
  private async missingTriggers(db: pg.Pool | Client): Promise<{ name: string; table: string; why: string }[]> {
    const triggers = await this.ourTriggers(db);
    const expected = this.names.captureTriggers.map((name) => ({ name, table: this.tableName }));
    // Every partition has each of them: the row triggers' clones, and TRUNCATE's own. A clone can be
    // disabled on its partition alone, and writes there would go unlogged.
    for (const p of await this.partitions(db)) expected.push(...this.names.captureTriggers.map((name) => ({ name, table: p.name })));
    return expected.flatMap(({ name, table }) => {
      const t = triggers.find((x) => x.name === name && x.table === table);
      // The owner may make the function SECURITY INVOKER (they own it): writers would then run its body with their own rights.
      const why = !t
        ? 'is missing'
        : !t.ours
          ? `does not call shadowcut's function ${this.fn}`
          : !t.definer
            ? `calls ${this.fn}, which is no longer SECURITY DEFINER`
            : t.enabled !== 'A'
              ? 'is not enabled always'
              : null;
      return why ? [{ name, table: `${this.schema}.${table}`, why }] : [];
    });
  }

  /** A partitioned table's partitions, at every level, as they are now. */
  private async partitions(db: pg.Pool | Client): Promise<{ oid: string; name: string }[]> {
    const { rows } = await db.query(
      `SELECT t.relid::oid AS oid, c.relname FROM pg_partition_tree(to_regclass($1)) t JOIN pg_class c ON c.oid = t.relid WHERE t.level > 0 ORDER BY c.relname`,
      [this.table],
    );
    return rows.map((r) => ({ oid: String(r.oid), name: String(r.relname) }));
  }

  async read(limit: number, afterSeq: string | null, session?: Session): Promise<LogEntry[]> {
    if (session !== undefined && !(session instanceof PgSession)) throw new Error(`not a PostgreSQL session: ${session.id}`);
    const width = this.key.length;
    const old = Array.from({ length: width }, (_, i) => `o_${i + 1}`);
    const moved = Array.from({ length: width }, (_, i) => `n_${i + 1}`);
    const values: unknown[] = [limit];
    if (afterSeq !== null) values.push(afterSeq);
    // Key columns come back as the server's text, as the stream's tuples do (the engine pool parses nothing).
    const { rows } = await (session?.client ?? this.pool).query({
      text: `SELECT seq, truncated, ${[...old, ...moved].join(', ')} FROM ${this.log}` + `${afterSeq !== null ? ' WHERE seq > $2' : ''} ORDER BY seq LIMIT $1`,
      values,
      rowMode: 'array',
    });
    return rows.map((r: (string | null)[]) => {
      const keys: Key[] = [];
      // Key columns are NOT NULL, so a NULL first column means "no such key in this entry".
      if (r[2] !== null) keys.push(r.slice(2, 2 + width));
      if (r[2 + width] !== null) keys.push(r.slice(2 + width));
      return { seq: String(r[0]), keys, truncated: isTrue(r[1]) };
    });
  }

  async remove(seqs: string[]): Promise<void> {
    if (seqs.length === 0) return;
    await this.pool.query(`DELETE FROM ${this.log} WHERE seq = ANY($1::bigint[])`, [seqs]);
  }

  /**
   * Exact up to EXACT_PENDING entries (a catch-up is level only when this is 0 after a drain, and
   * sequence gaps are common: a rolled-back write takes one too); beyond, from the primary key's
   * ends, which costs no scan and may overstate, never understate.
   */
  async pending(afterSeq: string | null = null): Promise<number> {
    const where = afterSeq === null ? '' : ' WHERE seq > $1';
    const { rows } = await this.pool.query(
      `SELECT CASE WHEN c.n < ${EXACT_PENDING} THEN c.n ELSE (SELECT max(seq) - min(seq) + 1 FROM ${this.log}${where}) END AS n
         FROM (SELECT count(*) AS n FROM (SELECT 1 FROM ${this.log}${where} LIMIT ${EXACT_PENDING}) l) c`,
      afterSeq === null ? [] : [afterSeq],
    );
    return Number(rows[0].n);
  }

  /**
   * The sequence's value, then a transaction id of our own: a writer has its transaction id (from its
   * write to the table, which fires the trigger) before its entry takes a sequence value, so every
   * writer that took one at or below `seq` has an id below ours. A sequence that caches values hands
   * out old ones later: no horizon then.
   */
  async horizon(): Promise<Horizon | null> {
    const { rows } = await this.pool.query(
      `SELECT pg_sequence_last_value(s.seqrelid) AS seq, s.seqcache AS cache
         FROM pg_sequence s WHERE s.seqrelid = pg_get_serial_sequence($1, 'seq')::regclass`,
      [this.log],
    );
    if (rows.length === 0 || rows[0].seq === null || Number(rows[0].cache) !== 1) return null;
    const { rows: xid } = await this.pool.query('SELECT pg_current_xact_id()::text AS xid');
    return { seq: String(rows[0].seq), mark: String(xid[0].xid) };
  }

  /** No transaction running has an id at or below the mark: the oldest running one is above it. */
  async settled(h: Horizon): Promise<boolean> {
    const { rows } = await this.pool.query('SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8 AS done', [h.mark]);
    return isTrue(rows[0].done);
  }

  /**
   * Triggers first (a writer must never fire a trigger whose function or log is gone), then the
   * function, then the log; only what is shadowcut's own. DROP TRIGGER locks the table against
   * readers too, so each attempt waits briefly, and is retried.
   */
  async uninstall(): Promise<void> {
    await retryBounded(
      {
        attempts: UNINSTALL_ATTEMPTS,
        retryable: isLockNotAvailable,
        pauseMs: (n) => backoffMs(n - 1, 250),
        exhausted: (error) => asLockTimeout(error, 'dropping the capture triggers'),
      },
      () =>
        helperTransaction(this.pool, async (client) => {
          await client.query(`SET LOCAL lock_timeout = ${UNINSTALL_LOCK_TIMEOUT_MS}`);
          await this.dropTriggers(client);
        }),
    );
    await helperTransaction(this.pool, async (client) => {
      const { rows } = await client.query(
        `SELECT ${givenOwnerSql('p.proowner', '$3')} AS ours
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2 AND p.pronargs = 0`,
        [this.schema, this.names.captureFunction, this.ownerTable],
      );
      if (rows.length > 0 && isTrue(rows[0].ours)) await client.query(`DROP FUNCTION ${this.fn}()`);
    });
    await dropOwnHelper(this.pool, this.schema, this.names.log, this.ownerTable);
  }

  /**
   * In the cut-over's transaction, under its lock, after the log was drained: every capture trigger
   * must still be there and enabled always, or writes since it was dropped or disabled (by hand, or
   * `DISABLE TRIGGER ALL`) were never logged and the shadow may lack them.
   */
  async removeAtCutover(client: Client): Promise<void> {
    const missing = await this.missingTriggers(client);
    if (missing.length) {
      const tables = [...new Set(missing.map((m) => m.table))];
      const list = tables
        .map(
          (table) =>
            `${missing
              .filter((m) => m.table === table)
              .map((m) => m.name)
              .join(', ')} on ${table}`,
        )
        .join('; ');
      throw new UserError(`the capture trigger(s) ${list} were dropped or disabled during the migration: changes may be missing; start again`);
    }
    await this.dropTriggers(client);
  }

  /** In the caller's transaction, which holds (or will take) the table's lock. */
  private async dropTriggers(client: Client): Promise<void> {
    for (const t of await this.ourTriggers(client)) {
      // A clone goes with the trigger it was cloned from (dropping it alone is refused).
      if (t.ours && !t.clone) await client.query(`DROP TRIGGER ${ident(t.name)} ON ${qualified(this.schema, t.table)}`);
    }
  }

  /**
   * The capture triggers (by name) on the table and its partitions, the clones of its row triggers
   * included (`clone`), each with its table's name and whether it calls shadowcut's own function.
   */
  async ourTriggers(db: pg.Pool | Client): Promise<{ name: string; table: string; ours: boolean; definer: boolean; enabled: string; clone: boolean }[]> {
    const { rows } = await db.query(
      `SELECT t.tgname AS name, c.relname AS table, t.tgenabled AS enabled, t.tgparentid <> 0 AS clone,
              (p.proname = $3 AND p.pronamespace = c.relnamespace AND ${givenOwnerSql('p.proowner', '$6')}) AS ours, p.prosecdef AS definer
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE n.nspname = $1 AND t.tgname = ANY ($4::text[])
          AND (c.relname = $2 OR c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass($5))))
        ORDER BY c.relname <> $2, c.relname, t.tgname`,
      [this.schema, this.tableName, this.names.captureFunction, this.names.captureTriggers, this.table, this.ownerTable],
    );
    return rows.map((r) => ({
      name: String(r.name),
      table: String(r.table),
      ours: isTrue(r.ours),
      definer: isTrue(r.definer),
      enabled: String(r.enabled),
      clone: isTrue(r.clone),
    }));
  }
}
