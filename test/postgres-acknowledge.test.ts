import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn } from '../src/engines/postgres/server/lsn.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { Recorder, pgPool, pgUrl } from './support/pg.js';
import { waitFor } from './support/run.js';

let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS rp_ack, rp_ack__new');
  await db.end();
});

describe('acknowledged stream positions (PostgreSQL)', () => {
  // A resume reopens the stream where the slot was confirmed. Commit records of concurrent
  // transactions often lie back to back in the WAL, so the position that ends one commit is where
  // the next one starts: confirming even one byte more skips that next transaction for good.
  it('a reopened stream still delivers the transaction whose commit starts where the acknowledged one ends', async () => {
    await db.query('DROP TABLE IF EXISTS rp_ack, rp_ack__new');
    await db.query('CREATE TABLE rp_ack (id int PRIMARY KEY)');
    const engine = await createPostgresEngine(pgUrl());
    const migration = await engine.prepare({ url: pgUrl(), table: 'rp_ack', alter: 'ADD COLUMN n int' });
    const { slot, publication } = migration.plan.detail as { slot: string; publication: string };
    const probe = await db.connect();
    try {
      const first = new Recorder();
      const stream = await migration.changes.open(first, undefined, { lockTimeoutMs: 1000, attempts: 1, warn: () => {} });
      // A second slot on the same publication, peeked through SQL, shows where each commit record starts and ends.
      await probe.query(`SELECT pg_create_logical_replication_slot('rp_ack_probe', 'pgoutput', true)`);
      let pair: { acknowledge: string; id: number } | null = null;
      // Other sessions' WAL may land between the two commits; then try again.
      for (let attempt = 0; attempt < 20 && !pair; attempt++) {
        const [a, b] = [await db.connect(), await db.connect()];
        const xids: string[] = [];
        try {
          for (const [client, id] of [
            [a, 2 * attempt + 1],
            [b, 2 * attempt + 2],
          ] as const) {
            await client.query('BEGIN');
            // Flushed at commit (the test servers run with synchronous_commit off), so the peek below sees it.
            await client.query('SET LOCAL synchronous_commit = on');
            await client.query('INSERT INTO rp_ack VALUES ($1)', [id]);
            const { rows } = await client.query(`SELECT (pg_current_xact_id()::text::numeric % 4294967296)::text AS xid`);
            xids.push(String(rows[0].xid));
          }
          await a.query('COMMIT');
          await b.query('COMMIT');
        } finally {
          a.release();
          b.release();
        }
        const { rows } = await probe.query(
          `SELECT data FROM pg_logical_slot_peek_binary_changes('rp_ack_probe', NULL, NULL, 'proto_version', '1', 'publication_names', $1)`,
          [publication],
        );
        const commits = new Map<string, { start: bigint; end: bigint }>();
        let xid = '';
        for (const row of rows) {
          const data = Buffer.from(String(row.data).slice(2), 'hex');
          if (data[0] === 0x42) {
            // Begin: final (commit record) LSN, commit time, xid.
            xid = String(data.readUInt32BE(17));
            commits.set(xid, { start: data.readBigUInt64BE(1), end: 0n });
          } else if (data[0] === 0x43) {
            // Commit: flags, commit LSN, end LSN.
            commits.get(xid)!.end = data.readBigUInt64BE(10);
          }
        }
        const [ca, cb] = [commits.get(xids[0]), commits.get(xids[1])];
        if (ca && cb && ca.end === cb.start) pair = { acknowledge: formatLsn(ca.end), id: 2 * attempt + 2 };
      }
      expect(pair, 'two commit records back to back').not.toBeNull();
      const { acknowledge, id } = pair!;
      await waitFor('the second transaction', () => first.changes.some((r) => r.key[0] === String(id)), null);
      // What the runner acknowledges once the first transaction is applied: the position its successor's keys carry.
      const position = first.changes.find((r) => r.key[0] === String(id))!.position;
      expect(migration.changes.comparePositions(position, { lsn: acknowledge })).toBe(0);
      await stream.acknowledge(position);
      let confirmed = '';
      await waitFor(
        'the acknowledgement',
        async () => {
          const { rows } = await db.query(
            `SELECT confirmed_flush_lsn::text AS lsn, confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`,
            [slot, acknowledge],
          );
          confirmed = String(rows[0].lsn);
          return rows[0].ok === 't';
        },
        null,
      );
      await stream.stop();

      const second = new Recorder();
      const reopened = await migration.changes.open(second, stream.start, { lockTimeoutMs: 1000, attempts: 1, warn: () => {} });
      const head = await reopened.head();
      await waitFor('the reopened stream to reach the head', () => second.seen !== null && migration.changes.comparePositions(second.seen, head) >= 0, null);
      expect(second.failure).toBeNull();
      expect(second.received).toContainEqual([String(id)]);
      expect(migration.changes.comparePositions({ lsn: confirmed }, position)).toBe(0);
    } finally {
      await probe.query(`SELECT pg_drop_replication_slot('rp_ack_probe') FROM pg_replication_slots WHERE slot_name = 'rp_ack_probe'`).catch(() => {});
      probe.release();
      await migration.cleanup({ dropOld: false, cutOver: false });
      await engine.close();
    }
  });
});
