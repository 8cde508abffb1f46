import type pg from 'pg';
import { KeysetSql, type Fragment } from '../../../core/engine/keyset.js';
import { UniqueViolationError, UserError, ROLLBACK_AFTER_FAILURE, ignoreFailure } from '../../../core/engine/errors.js';
import type { CheckedCopy, Key, KeyRange } from '../../../core/engine/types.js';
import { asUser, type Client, type PgSession } from '../server/connect.js';
import { dialect, ident, qualified } from '../server/sql.js';
import { errorCode } from '../server/errors.js';
import { inTransaction } from '../server/transactions.js';
import type { PgDetail } from '../schema/plan.js';
import { VisibilityGate } from '../capture/logical/visibility.js';
import { expectPartitionTree } from '../schema/partitions.js';
import { copyInto } from '../schema/shadow.js';
import { buildIndex } from './deferred-indexes.js';

/** Keys per statement: well under the protocol's 65535 parameters even for wide composite keys. */
const KEYS_PER_STATEMENT = 2000;

/** The key `rows` rows after `after` in `table` (qualified), as text; null when fewer remain. */
export async function nextKey(db: pg.Pool | Client, table: string, keys: KeysetSql, after: Key | null, rows: number): Promise<Key | null> {
  const where = keys.range({ after, upTo: null });
  const { rows: found } = await db.query({
    text: `SELECT ${keys.columns.map(ident).join(', ')} FROM ${table} WHERE ${where.sql} ORDER BY ${keys.orderBy()} LIMIT 1 OFFSET ${Math.max(0, rows - 1)}`,
    values: where.params,
    rowMode: 'array',
  });
  return found.length ? (found[0] as Key) : null;
}

/**
 * The shadow is only ever written by "delete these keys, insert them again from the original":
 * the server reads the original's committed row and converts its values itself (invariant 2),
 * values that the stream left out (unchanged TOASTed columns, the 'u' marker) never matter, and
 * applying a key twice is harmless.
 */
export class Copier {
  readonly originalKeys: KeysetSql;
  readonly shadowKeys: KeysetSql;
  readonly original: string;
  readonly shadow: string;
  /** Fed by the change stream (and by every stream reopened after it), awaited by each apply. */
  readonly gate: VisibilityGate;
  private readonly insertHead: string;
  /** A USING expression is the user's SQL: it runs under the user's search_path, as in the native ALTER. */
  readonly usingUserSql: boolean;
  /**
   * The shadow has no index yet, not even its key's (deferred-indexes.ts). A chunk then goes in without
   * first deleting its range, which would read the whole heap each time: nothing else writes the
   * shadow meanwhile (changes are held until the key exists), and chunks never overlap. A chunk
   * tried before has the key built first: its commit may have landed although the reply was lost
   * (or be waiting for a synchronous standby), and only with the key is deleting its range cheap and
   * sure (the build waits for that transaction to end).
   */
  keyless = false;
  /** Chunks begun and not known to have committed. */
  private readonly unsure = new Set<string>();
  private keyBuilt: Promise<void> | null = null;

  constructor(
    readonly d: PgDetail,
    pool: pg.Pool,
    /** The way back of a revert window: a row the old table refuses is named as such. */
    private readonly reverse = false,
    /** What an apply waits for when the table's changes are not this server's own (the nodes of a Citus table); else `gate`. */
    private readonly settle?: () => Promise<void>,
  ) {
    this.gate = new VisibilityGate(pool);
    // Row values: `(a, b) > ($1, $2)` is one index range; the expanded OR form made every chunk of a
    // composite key (a partitioned table's always is) scan the index from its start.
    // Typed with the key's types (the ALTER keeps them): see server/key-types.ts.
    this.originalKeys = new KeysetSql(dialect, d.originalKey, true, d.keyTypes);
    this.shadowKeys = new KeysetSql(dialect, d.shadowKey, true, d.keyTypes);
    this.original = qualified(d.schema, d.name);
    this.shadow = qualified(d.schema, d.shadow);
    this.insertHead = copyInto(this.shadow, d, this.original);
    this.usingUserSql = d.columns.some((c) => !/^"(?:[^"]|"")+"$/.test(c.source));
  }

  /** The key `rows` rows after `after` in the original, as text; null when fewer remain. */
  nextBoundary(db: pg.Pool | Client, after: Key | null, rows: number): Promise<Key | null> {
    return nextKey(db, this.original, this.originalKeys, after, rows);
  }

  async copyRange(pool: pg.Pool, range: KeyRange): Promise<number> {
    return (await this.copyChecked(pool, range, async () => true)).rows;
  }

  /** `copyRange`, with `check` run in the copy's transaction before it commits (its result is `matched`). */
  async copyChecked(pool: pg.Pool, range: KeyRange, check: (client: Client) => Promise<boolean>): Promise<CheckedCopy> {
    const id = JSON.stringify([range.after, range.upTo]);
    if (this.unsure.has(id)) await this.buildKey(pool);
    this.unsure.add(id);
    const copied = await inTransaction(pool, async (client) => {
      // Rows of a partition attached meanwhile never passed through the stream: stop at the next chunk.
      await expectPartitionTree(client, this.d);
      const rows = await this.copyOn(client, range);
      return { rows, matched: await check(client) };
    }).catch((error) => Promise.reject(copyError(error, this.reverse)));
    this.unsure.delete(id);
    return copied;
  }

  /** A chunk's statements, in the caller's transaction: the shadow's rows in the range replaced by the original's. */
  async copyOn(client: Client, range: KeyRange): Promise<number> {
    if (!this.keyless) await this.run(client, `DELETE FROM ${this.shadow} WHERE`, this.shadowKeys.range(range));
    return this.insert(client, this.originalKeys.range(range));
  }

  /** The shadow's key, once, when it has none: the copy's end, a resume, a retried chunk, a checksum while copying. */
  buildKey(pool: pg.Pool): Promise<void> {
    const index = this.d.keyIndex;
    if (!index) return Promise.resolve();
    this.keyBuilt ??= buildIndex(pool, this.d.schema, this.d.shadow, index).then(
      () => void (this.keyless = false),
      (error: unknown) => {
        this.keyBuilt = null;
        // Only a copy that put a row in twice could make this; nothing else writes the shadow before the key.
        if (errorCode(error) === '23505') {
          throw new UserError(`the key of ${this.shadow} could not be built (${(error as Error).message}); run shadowcut cleanup and start again`);
        }
        throw error;
      },
    );
    return this.keyBuilt;
  }

  /**
   * On a session holding a lock transaction, the statements join that transaction (the original is
   * locked against everyone else, so it must be read there); otherwise they get their own.
   */
  async applyKeys(pool: pg.Pool, keys: Key[], session?: PgSession): Promise<void> {
    const batches: Key[][] = [];
    for (let i = 0; i < keys.length; i += KEYS_PER_STATEMENT) batches.push(keys.slice(i, i + KEYS_PER_STATEMENT));
    // Every old row goes before any new one is inserted, so a unique value moving between two of
    // these keys never meets its own stale copy.
    const apply = async (client: Client) => {
      for (const batch of batches) await this.run(client, `DELETE FROM ${this.shadow} WHERE`, this.shadowKeys.keyIn(batch));
      for (const batch of batches) await this.insert(client, this.originalKeys.keyIn(batch));
    };
    if (keys.length === 0) return;
    // A key applied into a bare heap would be copied a second time by its chunk.
    if (this.keyless) throw new Error(`changes applied to ${this.shadow} before its key exists`);
    await (this.settle ? this.settle() : this.gate.settle(session?.client ?? pool));
    return this.applyWith(pool, apply, session).catch((error) => Promise.reject(copyError(error, this.reverse)));
  }

  private async applyWith(pool: pg.Pool, apply: (client: Client) => Promise<void>, session?: PgSession): Promise<void> {
    if (!session) return inTransaction(pool, apply);
    if (session.inTransaction) return apply(session.client);
    await session.client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    try {
      await apply(session.client);
      await session.client.query('COMMIT');
    } catch (error) {
      await session.client.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
      throw error;
    }
  }

  private insert(client: Client, where: Fragment): Promise<number> {
    const run = () => this.run(client, `${this.insertHead} WHERE`, where);
    return this.usingUserSql ? asUser(client, run) : run();
  }

  private async run(client: Client, head: string, where: Fragment): Promise<number> {
    const result = await client.query(`${head} ${where.sql}`, where.params);
    return result.rowCount ?? 0;
  }
}

/**
 * A unique conflict for the runner to judge. On the way back, a value the old table refuses (a data
 * exception, class 22, or a NOT NULL or CHECK violation) is said as such: "integer out of range" alone
 * names neither the table nor the direction. A key whose comparisons became ambiguous is said as such.
 */
function copyError(error: unknown, reverse: boolean): unknown {
  const code = errorCode(error) ?? '';
  if (code === '23505') return new UniqueViolationError((error as Error).message);
  // An implicit cast added to the key's type during the run makes the typed keyset comparisons
  // ambiguous (server/key-types.ts): the server refuses them rather than take the cast.
  if (code === '42725') {
    return new UserError(
      `the key's comparisons became ambiguous during the run (${(error as Error).message}): an implicit cast from its type was added; ` +
        'make that cast explicit (DROP CAST, then CREATE CAST without AS IMPLICIT) and run again',
    );
  }
  if (reverse && (code.startsWith('22') || code === '23502' || code === '23514')) {
    return new UserError(`a row of the new table cannot be stored in the old table, so it could not come back: ${(error as Error).message}`);
  }
  return error;
}
