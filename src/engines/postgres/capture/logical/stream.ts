import type pg from 'pg';
import replication, { type Pgoutput } from 'pg-logical-replication';
import { keyId } from '../../../../core/engine/capture/key-id.js';
import { UserError, ROLLBACK_AFTER_FAILURE, ignoreFailure } from '../../../../core/engine/errors.js';
import type { ChangeSink, Key, Position } from '../../../../core/engine/types.js';
import { formatLsn, lsnValue } from '../../server/lsn.js';
import { inTransaction } from '../../server/transactions.js';
import type { Client } from '../../server/connect.js';
import { columnSignature, type PgDetail } from '../../schema/plan.js';
import type { VisibilityGate } from './visibility.js';

const { LogicalReplicationService, PgoutputPlugin } = replication;
export type ReplicationService = InstanceType<typeof LogicalReplicationService>;
export { LogicalReplicationService };

/**
 * The library parses tuple values with pg's global type parsers (int4 -> Number, timestamptz ->
 * Date). Keys must stay the server's text, so each relation's columns get an identity parser as
 * soon as the relation message is parsed, before any row of that relation is.
 */
export class RawTextPgoutput extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const message = super.parse(buffer);
    if (message.tag === 'relation') for (const column of message.columns) column.parser = (raw: unknown) => raw;
    return message;
  }
}

/**
 * A catch-up target the stream is sure to reach even when the table is idle: the WAL insert
 * position, followed by a logical message in its own committed transaction. The message's
 * transaction commits after every write that preceded the position, so once the stream has
 * passed its commit it has delivered all of them. Transactional (not flushed-on-its-own) because
 * before PostgreSQL 17 a non-transactional message may wait for the WAL writer before a walsender
 * can send it; a commit flushes it at once.
 */
export async function fence(pool: pg.Pool): Promise<Position> {
  return { lsn: await inTransaction(pool, emitFence) };
}

/**
 * The fence on `client`, a session outside any transaction: the checksum's view, which catches up
 * while the original is locked. Taking a pooled connection there could wait without end for one to
 * come free (a set's members each holding theirs, each with its table locked), and writers would
 * wait with it.
 */
export async function fenceOn(client: Client): Promise<Position> {
  await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
  try {
    const lsn = await emitFence(client);
    await client.query('COMMIT');
    return { lsn };
  } catch (error) {
    await client.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
    throw error;
  }
}

async function emitFence(client: Client): Promise<string> {
  // The walsender only sends flushed WAL. With synchronous_commit off (common on busy primaries) the
  // fence would wait for the WAL writer, up to several wal_writer_delay, while we hold a lock; a
  // local commit flushes it, and everything before it, at once, without waiting for a synchronous
  // standby (which may be slow or gone) while the lock is held.
  await client.query('SET LOCAL synchronous_commit = local');
  const { rows } = await client.query('SELECT pg_current_wal_insert_lsn() AS lsn');
  await client.query(`SELECT pg_logical_emit_message(true, 'shadowcut', 'fence')`);
  return String(rows[0].lsn);
}

/**
 * One table's share of a stream: its row changes (the table's, or its partitions', each under its own
 * relation) turned into keys for its sink, and what must stop its run (a TRUNCATE, a column changed,
 * a partition gained). Positions are the reader's (hub.ts): keys carry the last commit's end before
 * them, so an acknowledgement never passes half a transaction.
 */
export class TableFollower {
  /** The table and its partitions when planned, by relation id. */
  readonly tree: Set<string>;

  constructor(
    readonly d: PgDetail,
    readonly sink: ChangeSink,
    private readonly gate: VisibilityGate,
  ) {
    this.tree = new Set([d.oid, ...(d.partitions ?? []).map((p) => p.oid)]);
  }

  /** A row change of the table in transaction `xid`, read after `position`. */
  change(message: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete, xid: number | null, position: Position): void {
    switch (message.tag) {
      case 'insert':
        return this.report([this.keyOf(message.new)], xid, position);
      case 'update': {
        // The old key arrives ('K' or 'O' tuple) when it differs, when it is stored out of line
        // (then the new tuple only says "unchanged"), or under REPLICA IDENTITY FULL.
        const after = this.keyOf(message.new);
        const before = this.keyOf(message.key ?? message.old);
        return this.report(after && before && keyId(after) === keyId(before) ? [after] : [after, before], xid, position);
      }
      case 'delete':
        return this.report([this.keyOf(message.key ?? message.old)], xid, position);
    }
  }

  truncated(): void {
    this.sink.fail(new UserError(`${this.d.schema}.${this.d.name} was truncated during the migration; start again`));
  }

  /** A relation message of the table's tree: its columns must be those planned. */
  described(relation: Pgoutput.MessageRelation): void {
    if (!sameColumns(relation, this.d)) {
      this.sink.fail(new UserError(`${this.d.schema}.${this.d.name} was altered during the migration (its columns changed); start again`));
    }
  }

  /** A relation of the publication that is no table's when planned: a partition attached since. */
  gained(relation: Pgoutput.MessageRelation): void {
    this.sink.fail(
      new UserError(
        `${this.d.schema}.${this.d.name} gained a partition during the migration (${relation.schema}.${relation.name}); stopped safely, start again`,
      ),
    );
  }

  // A key column stored out of line and left unchanged arrives as "unchanged" (undefined), not as its value.
  private keyOf(tuple: Record<string, unknown> | null): Key | null {
    const key = this.d.originalKey;
    return tuple && key.every((k) => tuple[k] !== undefined) ? key.map((k) => tuple[k] as string | null) : null;
  }

  /** A change whose key is not in the message at all cannot be applied: stop rather than lose it. */
  private report(keys: (Key | null)[], xid: number | null, position: Position): void {
    const known = keys.filter((k): k is Key => k !== null);
    if (known.length === 0) {
      const { schema, name } = this.d;
      this.sink.fail(
        new UserError(
          `a change to ${schema}.${name} arrived without its key (a key stored out of line, on a server before PostgreSQL 14.2?); stopped safely, the original is untouched`,
        ),
      );
      return;
    }
    // Before the keys reach the buffer, so no apply of them can miss the wait for this transaction.
    if (xid !== null) this.gate.note(xid);
    this.sink.keys(known, position);
  }
}

/**
 * Tells the server that everything before `lsn` is applied, and nothing more. pg-logical-replication
 * reports `lsn + 1` (the physical protocol's "last byte + 1", as if `lsn` were a last byte), but our
 * positions are already ends: a commit's end LSN, a keepalive's sent position. The next transaction's
 * commit record can start exactly there, and a slot confirmed one byte past it skips that whole
 * transaction when the stream is reopened (a resumed run then never applies it). So the library is
 * handed the byte before.
 */
export function confirm(service: ReplicationService, lsn: string): Promise<boolean> {
  const value = lsnValue(lsn);
  if (value === 0n) return Promise.resolve(false);
  return service.acknowledge(formatLsn(value - 1n));
}

/** A partition may hold the root's columns in another order (one attached after being made on its own). */
export function sameColumns(relation: Pgoutput.MessageRelation, d: PgDetail): boolean {
  if (String(relation.relationOid) === d.oid) return columnSignature(relation.columns) === columnSignature(d.streamColumns);
  const byName = <T extends { name: string }>(columns: T[]) => [...columns].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return columnSignature(byName(relation.columns)) === columnSignature(byName(d.streamColumns));
}
