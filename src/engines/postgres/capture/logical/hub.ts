import { sleep } from '../../../../core/engine/retry/backoff.js';
import type pg from 'pg';
import type { Pgoutput } from 'pg-logical-replication';
import type { ChangeSink, ChangeStream, Position, Session } from '../../../../core/engine/types.js';
import { ReaderHub, type HubMember } from '../../../../core/engine/capture/reader-hub.js';
import { formatLsn, lsnValue } from '../../server/lsn.js';
import { PgSession } from '../../server/connect.js';
import type { PgDetail } from '../../schema/plan.js';
import { pgConfig, type PgTarget } from '../../server/target.js';
import { confirm, fence, fenceOn, LogicalReplicationService, RawTextPgoutput, TableFollower, type ReplicationService } from './stream.js';
import { VisibilityGate } from './visibility.js';
import { makePublication } from './publication.js';
import { ignoreFailure } from '../../../../core/engine/errors.js';

/** How long a resumed reader waits for a dead run's walsender to let go of the slot. */
const SLOT_RELEASE_MS = 10_000;
/** How often a paused reader tells the walsender it is alive (its timeout is 60 s by default; a status update costs 34 bytes). */
const PAUSED_FEEDBACK_MS = 1_000;

/** One table's stream from the hub's slot. */
/** `after`: a transaction whose commit record starts before it is one the table had. */
interface Member extends HubMember<bigint> {
  table: TableFollower;
}

interface Reader {
  service: ReplicationService;
  /** A reader being stopped can still deliver a message or an error; it must reach no one. */
  stopped: boolean;
  ended: Promise<void>;
}

/**
 * One replication slot and one publication for the tables of a set (several tables, one cut-over),
 * or for one table: each table's run subscribes with its own sink, and one walsender decodes the WAL
 * once for all of them. Each table gets its own row changes (routed by relation id) and everyone
 * the positions between them.
 *
 * - **Joining.** A table joining a running reader starts where it has read to. What the reader
 *   passed on before was committed, but a commit is sent when its record is flushed, a moment before
 *   new snapshots see it: the join waits until every transaction the reader has passed on is visible
 *   (`passed`), so the table's copy, which starts after, sees them all.
 * - **Starting over.** One resuming from an earlier position starts the reader again from there, and
 *   every table skips the transactions it had: those whose commit record starts before its own
 *   position, the rule the server applies to a slot's own start (keys are idempotent; a transaction
 *   cut in two by the restart is taken again whole).
 * - **The slot moves at the slowest table's pace.** It is confirmed to the least position every
 *   table of the stream has applied, and not at all until each has joined once: a table resuming
 *   from further back must still find its changes there. A table that leaves keeps its place, since
 *   a stream that failed reopens from its own last applied position.
 * - A full sink pauses the reader for all; a reader that fails fails every table's stream.
 */
export class SlotHub extends ReaderHub<bigint, Member> {
  private reader: Reader | null = null;
  /** Every table that has joined, and the position it has applied to (its start until it acknowledges). */
  private readonly applied = new Map<string, bigint>();
  private confirmed = 0n;
  private feedback: NodeJS.Timeout | null = null;
  /** The last point with nothing undelivered behind it: a commit's end, or a keepalive between transactions. */
  private safe = 0n;
  private transaction: { xid: number; commit: bigint } | null = null;
  /** Relation messages of relations no member follows yet: a later member's, or a partition attached since. */
  private readonly unclaimed = new Map<string, Pgoutput.MessageRelation>();
  private readonly passed: VisibilityGate;

  constructor(
    private readonly target: PgTarget,
    private readonly pool: pg.Pool,
    private readonly slot: string,
    private readonly publication: string,
    /** Every table the publication follows, as SQL names. */
    private readonly tables: string[],
    /** How many tables will subscribe: one each, but one follower can take several relations (a node's shards of one distributed table). */
    private readonly expected = tables.length,
  ) {
    super();
    this.passed = new VisibilityGate(pool);
  }

  /** No table follows the slot: the last table's cleanup removes it. */
  get idle(): boolean {
    return this.members.size === 0;
  }

  subscribe(d: PgDetail, sink: ChangeSink, gate: VisibilityGate, from?: Position): Promise<ChangeStream> {
    const member: Member = { table: new TableFollower(d, sink, gate), sink, after: null };
    return this.joining(member, async () => {
      const wanted = from === undefined ? null : lsnValue(String(from.lsn));
      let start: bigint;
      if (this.reader === null) {
        start = wanted ?? (await this.ensureSlot());
        this.join(member, start);
        await this.startReader(start, member);
      } else if (wanted !== null && wanted < this.safe) {
        start = wanted;
        this.repeatingUpTo(this.safe);
        this.join(member, start);
        await this.stopReader();
        await this.startReader(start, member);
      } else {
        start = wanted ?? this.safe;
        member.after = start;
        this.join(member, start);
        if (wanted === null) await this.passed.settle();
      }
      return {
        start: { lsn: formatLsn(start) },
        // A session outside a transaction (the checksum view's) fences on itself; one holding the
        // cut-over's transaction cannot (its fence would be seen only once it commits).
        head: (session?: Session) => (session instanceof PgSession && !session.inTransaction ? fenceOn(session.client) : fence(this.pool)),
        acknowledge: (position: Position) => this.acknowledge(d, lsnValue(String(position.lsn))),
        stop: () => this.leave(member),
      };
    });
  }

  protected compare(a: bigint, b: bigint): number {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  private join(member: Member, start: bigint): void {
    this.members.add(member);
    const key = memberKey(member.table.d);
    if (!this.applied.has(key)) this.applied.set(key, start);
    for (const [oid, relation] of this.unclaimed) {
      if (!member.table.tree.has(oid)) continue;
      this.unclaimed.delete(oid);
      member.table.described(relation);
    }
    if (this.everyonePresent()) for (const relation of this.unclaimed.values()) this.gainedRelation(relation);
  }

  /** Every table has joined once: the slot may move (the least of their applied positions means something). */
  private everyoneJoined(): boolean {
    return this.applied.size >= this.expected;
  }

  /**
   * Every table is following now: a relation none of them owns is one the stream gained. Not so while
   * a reader that failed is being reopened table by table: the first one back reads the others'
   * relations before they have joined again (a set's sessions killed under its cut-over, seen).
   */
  private everyonePresent(): boolean {
    return this.members.size >= this.expected;
  }

  private async acknowledge(d: PgDetail, lsn: bigint): Promise<void> {
    const key = memberKey(d);
    if (lsn <= (this.applied.get(key) ?? 0n)) return;
    this.applied.set(key, lsn);
    if (!this.everyoneJoined() || this.reader === null) return;
    const least = [...this.applied.values()].reduce((a, b) => (b < a ? b : a));
    if (least <= this.confirmed) return;
    this.confirmed = least;
    await confirm(this.reader.service, formatLsn(least));
  }

  /** The slot and publication of the stream, made if this is the first table to need them; where the slot starts. */
  private async ensureSlot(): Promise<bigint> {
    const { rows } = await this.pool.query('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [this.slot]);
    // A set resumed with a table that had not started: the slot the others made is its, from where they confirmed it.
    if (rows.length) return lsnValue(String(rows[0].lsn));
    // Publication, then slot: the slot's start is fixed before the first row is copied (invariant 1).
    await makePublication(this.pool, this.publication, this.tables);
    const created = await this.pool.query(`SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [this.slot]);
    return lsnValue(String(created.rows[0].lsn));
  }

  /**
   * A run killed a moment ago may still hold the slot: its walsender ends once the server sees the
   * connection gone, and until then the slot refuses another reader ("is active for PID", 55006).
   * A resume waits for it, for a bounded time, or a resumed set's reader would be refused at once.
   */
  private async slotReleased(): Promise<void> {
    const deadline = Date.now() + SLOT_RELEASE_MS;
    while (Date.now() < deadline) {
      const { rows } = await this.pool.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [this.slot]);
      if (rows.length === 0 || rows[0].active_pid === null) return;
      await sleep(50);
    }
  }

  private async startReader(start: bigint, joining: Member): Promise<void> {
    await this.slotReleased();
    // Keepalive replies repeat what the slot already has, never more, until every table has applied more.
    const { rows } = await this.pool.query('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [this.slot]);
    if (rows.length && rows[0].lsn !== null) this.confirmed = maxLsn(this.confirmed, lsnValue(String(rows[0].lsn)));
    // No automatic acknowledgement and no timer: the slot only moves when every table says what is applied.
    const service = new LogicalReplicationService(pgConfig(this.target, { application_name: 'shadowcut' }), {
      acknowledge: { auto: false, timeoutSeconds: 0 },
    });
    const plugin = new RawTextPgoutput({ protoVersion: 1, publicationNames: [this.publication], messages: true });
    this.safe = start;
    this.transaction = null;
    this.readingAgain();
    let failure: Error | null = null;
    const reader: Reader = { service, stopped: false, ended: Promise.resolve() };
    this.reader = reader;
    service.on('data', (_lsn: string, message: Pgoutput.Message) => {
      if (!reader.stopped) this.receive(message);
    });
    service.on('heartbeat', (lsn: string, _time: number, shouldRespond: boolean) => {
      if (reader.stopped) return;
      const at = lsnValue(lsn);
      if (this.transaction === null && at > this.safe) this.passTo(at);
      // Keeps wal_sender_timeout from closing the connection; repeats the confirmed position only.
      if (shouldRespond) void confirm(service, formatLsn(this.confirmed));
    });
    service.on('error', (error: Error) => this.failAll(reader, error));
    let started = false;
    reader.ended = service
      .subscribe(plugin, this.slot, formatLsn(start))
      .catch((error: Error) => {
        failure = error;
      })
      .then(() => this.failAll(reader, failure ?? new Error('the replication connection closed')));
    await Promise.race([new Promise((resolve) => service.once('start', () => resolve((started = true)))), reader.ended]);
    if (!started) {
      // The tables already following (a start over from an earlier position) must not wait on a reader that never came.
      this.members.delete(joining);
      this.failAll(reader, failure ?? new Error('the replication connection closed'));
      throw failure ?? new Error('the replication connection closed before streaming started');
    }
  }

  private receive(message: Pgoutput.Message): void {
    switch (message.tag) {
      case 'begin':
        this.transaction = { xid: message.xid, commit: message.commitLsn === null ? this.safe : lsnValue(message.commitLsn) };
        this.passed.note(message.xid);
        break;
      case 'commit':
        this.transaction = null;
        this.passTo(message.commitEndLsn === null ? this.safe : lsnValue(message.commitEndLsn));
        break;
      case 'insert':
      case 'update':
      case 'delete': {
        const member = this.owner(String(message.relation.relationOid));
        if (member && this.takes(member)) member.table.change(message, this.transaction?.xid ?? null, { lsn: formatLsn(this.safe) });
        break;
      }
      case 'truncate':
        for (const relation of message.relations) {
          const member = this.owner(String(relation.relationOid));
          if (member && this.takes(member)) member.table.truncated();
        }
        break;
      case 'relation': {
        // A partitioned table's changes come under each partition's own relation (the publication
        // does not publish via the root, which would hide a TRUNCATE of one partition).
        const oid = String(message.relationOid);
        const member = this.owner(oid);
        if (member) member.table.described(message);
        else if (this.everyonePresent()) this.gainedRelation(message);
        else this.unclaimed.set(oid, message);
        break;
      }
    }
    this.pauseIfFull();
  }

  private owner(oid: string): Member | undefined {
    for (const member of this.members) if (member.table.tree.has(oid)) return member;
    return undefined;
  }

  /** Whether the current transaction is one the table did not have. */
  private takes(member: Member): boolean {
    return member.after === null || (this.transaction !== null && this.transaction.commit >= member.after);
  }

  /** The reader is past everything before `lsn`: each table that had less advances. */
  private passTo(lsn: bigint): void {
    this.safe = lsn;
    const position = { lsn: formatLsn(lsn) };
    for (const member of this.members) if (this.reached(member, lsn)) member.sink.advance(position);
  }

  /** A relation of the publication that no table of the stream had when planned: every table stops, since which one gained it cannot be told. */
  private gainedRelation(relation: Pgoutput.MessageRelation): void {
    for (const member of [...this.members]) member.table.gained(relation);
  }

  private failAll(reader: Reader, error: Error): void {
    if (reader.stopped) return;
    reader.stopped = true;
    if (this.reader === reader) {
      this.reader = null;
      this.stopFeedback();
    }
    // Each table reopens from its own position, into a reader started afresh.
    const failed = [...this.members];
    this.members.clear();
    void reader.service.destroy().catch(ignoreFailure('the failed reader is thrown away: its tables reopen in a reader started afresh'));
    for (const member of failed) member.sink.fail(error);
  }

  protected async stopReader(): Promise<void> {
    const reader = this.reader;
    this.stopFeedback();
    if (reader === null) return;
    this.reader = null;
    reader.stopped = true;
    await reader.service.destroy();
    await reader.ended;
  }

  /**
   * While the socket is paused the walsender's keepalives go unread and unanswered, and after
   * `wal_sender_timeout` (60 s by default) it would end the connection: a paused reader sends the
   * confirmed position on its own every few seconds. Changes can be held for as long as a copy lasts
   * (copy/deferred-indexes.ts), far past that timeout.
   */
  protected pauseReading(): void {
    const reader = this.reader;
    if (!reader) return;
    socketOf(reader.service)?.pause();
    this.stopFeedback();
    this.feedback = setInterval(() => {
      // A connection that died meanwhile is reported by the reader's own error; this has nothing to add.
      if (!reader.stopped)
        confirm(reader.service, formatLsn(this.confirmed)).catch(ignoreFailure("a connection that died is reported by the reader's own error"));
    }, PAUSED_FEEDBACK_MS);
  }

  protected resumeReading(): void {
    this.stopFeedback();
    if (this.reader) socketOf(this.reader.service)?.resume();
  }

  private stopFeedback(): void {
    if (this.feedback) clearInterval(this.feedback);
    this.feedback = null;
  }
}

function maxLsn(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function memberKey(d: PgDetail): string {
  return `${d.schema}.${d.name}`;
}

/** The library keeps its connection private; its socket is read for back-pressure only. */
function socketOf(service: ReplicationService): NodeJS.ReadableStream | undefined {
  const connection: { stream?: NodeJS.ReadableStream } | undefined = Reflect.get(service, '_connection');
  return connection?.stream;
}
