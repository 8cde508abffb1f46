import type pg from 'pg';
import replication, { type Pgoutput } from 'pg-logical-replication';
import { keyId } from '../../../../core/migrate/change-buffer.js';
import { UserError } from '../../../../core/errors.js';
import type { ChangeSink, ChangeStream, Key, Position } from '../../../../core/types.js';
import { formatLsn, ident, inTransaction, lsnValue, qualified } from '../../server/connect.js';
import { columnSignature, type PgDetail } from '../../schema/plan.js';
import type { VisibilityGate } from './visibility.js';
import { pgConfig, type PgTarget } from '../../server/target.js';

const { LogicalReplicationService, PgoutputPlugin } = replication;

/**
 * The library parses tuple values with pg's global type parsers (int4 -> Number, timestamptz ->
 * Date). Keys must stay the server's text, so each relation's columns get an identity parser as
 * soon as the relation message is parsed, before any row of that relation is.
 */
class RawTextPgoutput extends PgoutputPlugin {
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
  // The walsender only sends flushed WAL. With synchronous_commit off (common on busy primaries) the
  // fence would wait for the WAL writer, up to several wal_writer_delay, while we hold a lock; a
  // local commit flushes it, and everything before it, at once, without waiting for a synchronous
  // standby (which may be slow or gone) while the lock is held.
  const lsn = await inTransaction(pool, async (client) => {
    await client.query('SET LOCAL synchronous_commit = local');
    const { rows } = await client.query('SELECT pg_current_wal_insert_lsn() AS lsn');
    await client.query(`SELECT pg_logical_emit_message(true, 'shadowcut', 'fence')`);
    return String(rows[0].lsn);
  });
  return { lsn };
}

/** Publication, then slot: the slot's start is fixed before the first row is copied (invariant 1). */
export async function createSlot(pool: pg.Pool, d: PgDetail): Promise<Position> {
  await pool.query(`CREATE PUBLICATION ${ident(d.publication)} FOR TABLE ${qualified(d.schema, d.name)}`);
  const { rows } = await pool.query(`SELECT lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [d.slot]);
  return { lsn: rows[0].lsn };
}

export async function openStream(
  target: PgTarget,
  d: PgDetail,
  sink: ChangeSink,
  start: Position,
  head: () => Promise<Position>,
  gate: VisibilityGate,
): Promise<ChangeStream> {
  // No automatic acknowledgement and no timer: the slot only moves when the runner says what is applied.
  const service = new LogicalReplicationService(pgConfig(target, { application_name: 'shadowcut' }), { acknowledge: { auto: false, timeoutSeconds: 0 } });
  const plugin = new RawTextPgoutput({ protoVersion: 1, publicationNames: [d.publication], messages: true });
  let stopped = false;
  let acknowledged = String(start.lsn);
  // Last position with nothing undelivered behind it: a commit's end, or a keepalive between transactions.
  let safe = String(start.lsn);
  let inTransaction = false;
  let xid: number | null = null;
  let paused = false;
  const tree = new Set([d.oid, ...(d.partitions ?? []).map((p) => p.oid)]);

  // A key column stored out of line and left unchanged arrives as "unchanged" (undefined), not as its value.
  const keyOf = (tuple: Record<string, unknown> | null): Key | null =>
    tuple && d.originalKey.every((k) => tuple[k] !== undefined) ? d.originalKey.map((k) => tuple[k] as string | null) : null;
  const report = (keys: Key[]) => {
    // Before the keys reach the buffer, so no apply of them can miss the wait for this transaction.
    if (xid !== null) gate.note(xid);
    xid = null;
    sink.keys(keys, { lsn: safe });
  };
  /** A change whose key is not in the message at all cannot be applied: stop rather than lose it. */
  const reportKnown = (keys: (Key | null)[]) => {
    const known = keys.filter((k): k is Key => k !== null);
    if (known.length > 0) return report(known);
    sink.fail(
      new UserError(
        `a change to ${d.schema}.${d.name} arrived without its key (a key stored out of line, on a server before PostgreSQL 14.2?); stopped safely, the original is untouched`,
      ),
    );
  };
  // The library keeps its connection private; its socket is read for back-pressure only.
  const socket = () => {
    const connection: { stream?: NodeJS.ReadableStream } | undefined = Reflect.get(service, '_connection');
    return connection?.stream;
  };

  service.on('data', (_lsn: string, message: Pgoutput.Message) => {
    switch (message.tag) {
      case 'begin':
        inTransaction = true;
        xid = message.xid;
        break;
      case 'commit':
        inTransaction = false;
        safe = message.commitEndLsn ?? safe;
        sink.advance({ lsn: safe });
        break;
      case 'insert':
        reportKnown([keyOf(message.new)]);
        break;
      case 'update': {
        // The old key arrives ('K' or 'O' tuple) when it differs, when it is stored out of line
        // (then the new tuple only says "unchanged"), or under REPLICA IDENTITY FULL.
        const after = keyOf(message.new);
        const before = keyOf(message.key ?? message.old);
        reportKnown(after && before && keyId(after) === keyId(before) ? [after] : [after, before]);
        break;
      }
      case 'delete':
        reportKnown([keyOf(message.key ?? message.old)]);
        break;
      case 'truncate':
        sink.fail(new UserError(`${d.schema}.${d.name} was truncated during the migration; start again`));
        break;
      case 'relation':
        // A partitioned table's changes come under each partition's own relation (the publication
        // does not publish via the root, which would hide a TRUNCATE of one partition).
        if (!tree.has(String(message.relationOid))) {
          sink.fail(
            new UserError(`${d.schema}.${d.name} gained a partition during the migration (${message.schema}.${message.name}); stopped safely, start again`),
          );
        } else if (!sameColumns(message, d)) {
          sink.fail(new UserError(`${d.schema}.${d.name} was altered during the migration (its columns changed); start again`));
        }
        break;
    }
    // Back-pressure: stop reading the socket until the applier has made room.
    if (!paused && !sink.hasRoom()) {
      paused = true;
      socket()?.pause();
      sink.onRoom(() => {
        paused = false;
        socket()?.resume();
      });
    }
  });
  service.on('heartbeat', (lsn: string, _time: number, shouldRespond: boolean) => {
    if (!inTransaction && lsnValue(lsn) > lsnValue(safe)) {
      safe = lsn;
      sink.advance({ lsn });
    }
    // Keeps wal_sender_timeout from closing the connection; repeats the applied position only.
    if (shouldRespond) void confirm(service, acknowledged);
  });
  service.on('error', (error: Error) => {
    if (!stopped) sink.fail(error);
  });

  let started = false;
  let failure: Error | null = null;
  const ended = service
    .subscribe(plugin, d.slot, String(start.lsn))
    .catch((error: Error) => {
      failure = error;
    })
    .then(() => {
      if (!stopped) sink.fail(failure ?? new Error('the replication connection closed'));
    });
  await Promise.race([new Promise((resolve) => service.once('start', () => resolve((started = true)))), ended]);
  if (!started) throw failure ?? new Error('the replication connection closed before streaming started');

  return {
    start,
    head,
    async acknowledge(position: Position) {
      if (lsnValue(String(position.lsn)) <= lsnValue(acknowledged)) return;
      acknowledged = String(position.lsn);
      await confirm(service, acknowledged);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await service.destroy();
      await ended;
    },
  };
}

/**
 * Tells the server that everything before `lsn` is applied, and nothing more. pg-logical-replication
 * reports `lsn + 1` (the physical protocol's "last byte + 1", as if `lsn` were a last byte), but our
 * positions are already ends: a commit's end LSN, a keepalive's sent position. The next transaction's
 * commit record can start exactly there, and a slot confirmed one byte past it skips that whole
 * transaction when the stream is reopened (a resumed run then never applies it). So the library is
 * handed the byte before.
 */
function confirm(service: InstanceType<typeof LogicalReplicationService>, lsn: string): Promise<boolean> {
  const value = lsnValue(lsn);
  if (value === 0n) return Promise.resolve(false);
  return service.acknowledge(formatLsn(value - 1n));
}

/** A partition may hold the root's columns in another order (one attached after being made on its own). */
function sameColumns(relation: Pgoutput.MessageRelation, d: PgDetail): boolean {
  if (String(relation.relationOid) === d.oid) return columnSignature(relation.columns) === columnSignature(d.streamColumns);
  const byName = <T extends { name: string }>(columns: T[]) => [...columns].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return columnSignature(byName(relation.columns)) === columnSignature(byName(d.streamColumns));
}
