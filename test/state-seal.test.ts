import { describe, expect, it } from 'vitest';
import type { QueueRow } from '../src/core/engine/ports/queue.js';
import { databases, expectMirrored, migrateOn, useDatabase, type Database } from './support/fixture.js';
import { killDuringPhase } from './support/kill.js';
import { historyOf } from '../src/core/history/store.js';

// State is data, never code (docs/invariants.md, invariant 19): what shadowcut reads back from a table another
// account can write (a checkpoint, a queue entry, a history entry) is used only when its seal proves
// shadowcut wrote it. Each case rewrites a document as such an account would and expects a refusal
// in one line with nothing of the rewritten text run, then shows the untouched document still works.

const dialects = {
  mysql: {
    create: (t: string) => `CREATE TABLE ${t} (id INT PRIMARY KEY, n INT NOT NULL, body VARCHAR(100)) ENGINE=InnoDB`,
    alter: 'ADD COLUMN w INT NULL',
    state: (t: string) => ({ read: `SELECT checkpoint FROM ${t}__state WHERE id = 1`, write: `UPDATE ${t}__state SET checkpoint = ? WHERE id = 1` }),
    queue: { read: 'SELECT spec FROM shadowcut_queue WHERE id = ?', write: 'UPDATE shadowcut_queue SET spec = ? WHERE id = ?' },
    history: `INSERT INTO shadowcut_history (table_name, command, started_at, finished_at, outcome, rows_touched, entry) VALUES (?, 'contract', NOW(6), NOW(6), 'success', 0, ?)`,
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (id int PRIMARY KEY, n int NOT NULL, body varchar(100))`,
    alter: 'ADD COLUMN w int',
    state: (t: string) => ({ read: `SELECT checkpoint FROM ${t}__state WHERE id = 1`, write: `UPDATE ${t}__state SET checkpoint = $1 WHERE id = 1` }),
    queue: { read: 'SELECT spec::text FROM shadowcut_queue WHERE id = $1', write: 'UPDATE shadowcut_queue SET spec = $1::jsonb WHERE id = $2' },
    history: `INSERT INTO shadowcut_history (table_name, command, started_at, finished_at, outcome, rows_touched, entry) VALUES ($1, 'contract', now(), now(), 'success', 0, $2::jsonb)`,
  },
};

/** A sealed document with its body changed and its seal kept, as an account that can write the table but lacks the key would make it. */
function rewritten(stored: string, change: (body: Record<string, unknown>) => void): string {
  const envelope = JSON.parse(stored) as { seal: string; body: string };
  const body = JSON.parse(envelope.body) as Record<string, unknown>;
  change(body);
  return JSON.stringify({ seal: envelope.seal, body: JSON.stringify(body) });
}

/** The refusal is one line, names the document, and carries no stack trace. */
function expectRefused(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe.each(databases)('$name: state read back is sealed', ({ open, kind }) => {
  const db: Database = useDatabase(open, 'seal_t', 'seal_mirror', 'seal_q', 'seal_pwned', 'shadowcut_history');
  const d = dialects[kind];

  async function seed(table: string, rows: number) {
    await db.drop(table);
    await db.query(d.create(table));
    await db.query(`INSERT INTO ${table} SELECT g, g % 50, 'b' FROM (${db.series(rows)}) s`);
  }

  it('a checkpoint rewritten by another account is refused on --resume, nothing in it runs; the untouched one resumes', async () => {
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'seal_t', '--drop-old']).code).toBe(0);
    await seed('seal_t', 30_000);
    await seed('seal_mirror', 30_000);
    await db.drop('seal_pwned');
    await db.query(`CREATE TABLE seal_pwned (who VARCHAR(200))`);
    const run = ['--url', db.url, '--table', 'seal_t', '--alter', d.alter, '--chunk-time-ms', '10', '--max-rows-per-sec', '10000'];
    const crash = await killDuringPhase(run, 'copy', 300);
    expect(crash.killed, crash.stderr).toBe(true);
    const { read, write } = d.state('seal_t');
    const original = String((await db.query(read))[0][0]);

    // The exploit: a trigger whose CREATE a resumed run would have made as itself.
    const payload =
      kind === 'mysql'
        ? `CREATE TRIGGER seal_pwn AFTER INSERT ON seal_t__new FOR EACH ROW INSERT INTO seal_pwned VALUES (CURRENT_USER())`
        : `CREATE TABLE seal_pwn_made (x int)`;
    const tampered = rewritten(original, (cp) => {
      const detail = (cp.plan as { detail: Record<string, unknown> }).detail;
      if (Array.isArray(detail.triggers)) detail.triggers.push({ name: 'seal_pwn', create: payload });
      else detail.shadowDdl = payload;
    });
    const resume = ['migrate', '--force-copy', '--url', '$URL', '--table', 'seal_t', '--alter', d.alter, '--execute', '--resume'];
    await db.query(write, [tampered]);
    expectRefused(db.cli(resume), /refusing the checkpoint of \S*seal_t: its seal does not match/);
    // Unsealed JSON, as a version before the seal or a hand would write it: refused too.
    await db.query(write, [JSON.parse(original).body]);
    expectRefused(db.cli(resume), /refusing the checkpoint of \S*seal_t: it carries no seal/);
    // cleanup, which reads the checkpoint for what to put back, refuses it as well.
    expectRefused(db.cli(['cleanup', '--url', '$URL', '--table', 'seal_t']), /refusing the checkpoint of \S*seal_t/);
    const made = await db.query(
      kind === 'mysql'
        ? `SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = DATABASE() AND trigger_name = 'seal_pwn'`
        : `SELECT COUNT(*) FROM pg_class WHERE relname = 'seal_pwn_made'`,
    );
    expect(Number(made[0][0])).toBe(0);

    // What shadowcut wrote still resumes, to the native ALTER's table.
    await db.query(write, [original]);
    const result = await migrateOn(db, 'seal_t', d.alter, { resume: true });
    expect(result.resumed).toBe(true);
    await db.query(`ALTER TABLE seal_mirror ${d.alter}`);
    await expectMirrored(db, 'seal_t', 'seal_mirror');
    await db.query(`INSERT INTO seal_t (id, n, body) VALUES (999999, 1, 'x')`);
    expect(Number((await db.query('SELECT COUNT(*) FROM seal_pwned'))[0][0])).toBe(0);
  });

  it('a queued entry rewritten by another account is failed by the runner, not run', async () => {
    await seed('seal_q', 100);
    const add = db.cli(['queue', 'add', '--url', '$URL', '--json', '--stage', 'backfill', '--table', 'seal_q', '--set', 'n = 1']);
    expect(add.stderr).toBe('');
    const id = (JSON.parse(add.stdout) as { id: number }).id;
    const original = String((await db.query(d.queue.read, [id]))[0][0]);
    const tampered = rewritten(original, (entry) => {
      const { args } = entry.spec as { args: string[] };
      args.splice(0, args.length, '--set', 'n = 777');
    });
    await db.query(d.queue.write, [tampered, id]);
    db.cli(['queue', 'run', '--url', '$URL']);
    const listed = JSON.parse(db.cli(['queue', 'list', '--url', '$URL', '--json']).stdout) as QueueRow[];
    const entry = listed.find((r) => r.id === id)!;
    expect(entry.state).toBe('failed');
    expect(entry.status.lastError ?? entry.status.attempts.at(-1)?.error ?? '').toMatch(/its seal does not match/);
    expect(Number((await db.query('SELECT COUNT(*) FROM seal_q WHERE n = 777'))[0][0])).toBe(0);
    // Released again, it stays refused: a runner never seals what it did not write.
    const retry = db.cli(['queue', 'retry', '--url', '$URL', String(id)]);
    expect(retry.code === 0 ? db.cli(['queue', 'run', '--url', '$URL']).code : retry.code).not.toBe(0);
    expect(Number((await db.query('SELECT COUNT(*) FROM seal_q WHERE n = 777'))[0][0])).toBe(0);
  });

  it('a history entry shadowcut did not write is not read: restore finds no contract in it', async () => {
    await seed('seal_q', 10);
    const engine = await db.engine();
    try {
      const table = engine.qualify('seal_q');
      const started = new Date().toISOString();
      const real = { table, command: 'verify', stage: 'n = n', startedAt: started, finishedAt: started, outcome: 'success' as const, rowsTouched: 0 };
      await historyOf(engine).append({ ...real, command: 'verify' as const, checks: [], summary: [], detail: {}, by: 'test' });
      const forged = { ...real, command: 'contract', stage: 'drop column n', detail: { drop: { kind: 'column', column: 'n', backup: 'seal_pwned' } } };
      await db.query(d.history, [table, JSON.stringify({ ...forged, checks: [], summary: [], by: 'app' })]);
      const listed = await historyOf(engine).list(table);
      expect(listed.map((e) => e.command)).not.toContain('contract');
      expect(listed.some((e) => e.command === 'verify' && e.startedAt === started)).toBe(true);
    } finally {
      await engine.close();
    }
    const restore = db.cli(['restore', '--url', '$URL', '--table', 'seal_q', '--from', 'seal_pwned', '--execute']);
    expect(restore.code).not.toBe(0);
    expect(restore.stderr).toMatch(/has no contract that kept its data in seal_pwned/);
  });
});
