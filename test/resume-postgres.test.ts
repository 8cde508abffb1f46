import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn } from '../src/engines/postgres/connect.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { killDuringPhase } from './support/kill.js';
import { waitFor } from './support/run.js';
import { runCli } from './support/mysql.js';
import { Recorder, differences, migratePg, pgHelpers, pgPool, pgSchemaOf, pgUrl, postgresDatabase } from './support/pg.js';
import { MirrorWorkload, type Statement } from './support/workload.js';

// Large enough that the copy is still running when the kill arrives, even on a fast machine.
const ROWS = 300_000;
const ALTER = 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note text';
let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS rp_t, rp_mirror, rp_t__new, rp_t__old, rp_t__state, rp_t__hb, rp_ack, rp_ack__new');
  await db.end();
});

async function seed() {
  expect(runCli(['cleanup', '--url', pgUrl(), '--table', 'rp_t', '--drop-old'], pgUrl()).code).toBe(0);
  await db.query('DROP TABLE IF EXISTS rp_t, rp_mirror, rp_t__new, rp_t__old, rp_t__state, rp_t__hb');
  await db.query('CREATE TABLE rp_t (id int PRIMARY KEY, qty int NOT NULL, at timestamptz NOT NULL, body text)');
  await db.query(`INSERT INTO rp_t SELECT g, g % 50, '2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1 second', repeat('b', g % 300)
                  FROM generate_series(1, ${ROWS}) g`);
  await db.query('CREATE TABLE rp_mirror (LIKE rp_t INCLUDING ALL)');
  await db.query('INSERT INTO rp_mirror SELECT * FROM rp_t');
}

const inserted = [0, 0, 0];
function writes(worker: number): Statement {
  const id = 1 + worker + 3 * Math.floor(Math.random() * (ROWS / 3));
  const r = Math.random();
  if (r < 0.6) return { sql: `UPDATE {t} SET qty = qty + 1, at = at + interval '1 microsecond' WHERE id = $1`, values: [id] };
  if (r < 0.8) return { sql: 'DELETE FROM {t} WHERE id = $1', values: [id] };
  const fresh = ROWS + 1000 + worker + 3 * ++inserted[worker];
  return { sql: `INSERT INTO {t} VALUES ($1, 1, '2025-05-05 05:05:05.000005+00', 'new')`, values: [fresh] };
}

describe('kill -9, then --resume (PostgreSQL)', () => {
  it.each([
    ['copy', 300],
    ['catch-up', 0],
    ['verify', 0],
  ])('killed during %s: the resumed run ends with exactly the rows of the mirror, under writes', async (phase, delay) => {
    await seed();
    const load = new MirrorWorkload(postgresDatabase(db), ['rp_t', 'rp_mirror'], writes);
    load.start();
    try {
      const crash = await killDuringPhase(['--url', pgUrl(), '--table', 'rp_t', '--alter', ALTER, '--chunk-time-ms', '10'], phase, delay);
      expect(crash.killed).toBe(true);
      expect((await pgHelpers(db, 'rp_t')).filter((h) => h.startsWith('shadowcut_'))).toHaveLength(2); // slot and publication kept for resuming
      const result = await migratePg('rp_t', ALTER, { resume: true });
      expect(result.resumed).toBe(true);
      // Verification would repair missed changes; a correct resume leaves it nothing to repair.
      expect(result.checksumRounds).toBe(1);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    await db.query(`ALTER TABLE rp_mirror ${ALTER}`);
    expect(await pgSchemaOf(db, 'rp_t')).toEqual(await pgSchemaOf(db, 'rp_mirror'));
    expect(await differences(db, 'rp_t', 'rp_mirror')).toEqual([]);
    expect(await pgHelpers(db, 'rp_t')).toEqual(['rp_t__old']);
  });
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
      const stream = await migration.openChanges(first);
      // A second slot on the same publication, peeked through SQL, shows where each commit record starts and ends.
      await probe.query(`SELECT pg_create_logical_replication_slot('rp_ack_probe', 'pgoutput', true)`);
      let pair: { acknowledge: string; id: number } | null = null;
      // Other sessions' WAL may land between the two commits; then try again.
      for (let attempt = 0; attempt < 20 && !pair; attempt++) {
        const [a, b] = [await db.connect(), await db.connect()];
        const xids: string[] = [];
        try {
          for (const [client, id] of [[a, 2 * attempt + 1], [b, 2 * attempt + 2]] as const) {
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
      expect(engine.comparePositions(position, { lsn: acknowledge })).toBe(0);
      await stream.acknowledge(position);
      let confirmed = '';
      await waitFor('the acknowledgement', async () => {
        const { rows } = await db.query(`SELECT confirmed_flush_lsn::text AS lsn, confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`, [
          slot,
          acknowledge,
        ]);
        confirmed = String(rows[0].lsn);
        return rows[0].ok === 't';
      }, null);
      await stream.stop();

      const second = new Recorder();
      const reopened = await migration.openChanges(second, stream.start);
      const head = await reopened.head();
      await waitFor('the reopened stream to reach the head', () => second.seen !== null && engine.comparePositions(second.seen, head) >= 0, null);
      expect(second.failure).toBeNull();
      expect(second.received).toContainEqual([String(id)]);
      expect(engine.comparePositions({ lsn: confirmed }, position)).toBe(0);
    } finally {
      await probe.query(`SELECT pg_drop_replication_slot('rp_ack_probe') FROM pg_replication_slots WHERE slot_name = 'rp_ack_probe'`).catch(() => {});
      probe.release();
      await migration.cleanup({ dropOld: false, cutOver: false });
      await engine.close();
    }
  });
});
