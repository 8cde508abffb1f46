import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../src/core/engine/ports/history.js';
import { databases, useDatabase } from './support/fixture.js';
import { MirrorWorkload, type Statement } from './support/workload.js';
import { waitFor } from './support/run.js';

const ROWS = 20_000;
const VARCHAR = { mysql: 'VARCHAR(100)', postgres: 'varchar(100)' } as const;

/**
 * A column rename the way it is done without downtime, stage by stage, with an application writing
 * all along: expand (add the new column, in place), the application writes both, backfill, verify,
 * the application switches to the new column, contract (drop the old one, kept in a backup). A
 * mirror table gets the same writes and each stage's change directly; at the end the two must be
 * equal, row by row.
 */
describe.each(databases)('a column rename by expand/contract on $name', ({ kind, open }) => {
  const db = useDatabase(open, 'walk', 'walk_m', 'walk_email_backup', 'shadowcut_history');
  type Stage = 'old' | 'both' | 'new';
  let stage: Stage = 'old';
  let version = 0;
  const nextIds = [0, 1, 2].map((w) => ROWS + 1 + w);

  /** Worker w owns the ids congruent to w mod 3: writers never conflict. */
  const next = (w: number): Statement => {
    const p = (n: number) => db.param(n);
    seen[w] = stage;
    const email = `User${w}.${++version}@Example.COM`;
    const roll = Math.random();
    if (roll < 0.2) {
      const id = nextIds[w];
      nextIds[w] += 3;
      if (stage === 'old') return { sql: `INSERT INTO {t} (id, email, n) VALUES (${p(1)}, ${p(2)}, 0)`, values: [id, email] };
      if (stage === 'both') return { sql: `INSERT INTO {t} (id, email, email_addr, n) VALUES (${p(1)}, ${p(2)}, ${p(3)}, 0)`, values: [id, email, email] };
      return { sql: `INSERT INTO {t} (id, email_addr, n) VALUES (${p(1)}, ${p(2)}, 0)`, values: [id, email] };
    }
    const id = 3 * Math.floor(Math.random() * (ROWS / 3)) + w + 1;
    if (roll < 0.3) return { sql: `DELETE FROM {t} WHERE id = ${p(1)}`, values: [id] };
    if (stage === 'old') return { sql: `UPDATE {t} SET email = ${p(1)}, n = n + 1 WHERE id = ${p(2)}`, values: [email, id] };
    if (stage === 'both') return { sql: `UPDATE {t} SET email = ${p(1)}, email_addr = ${p(2)}, n = n + 1 WHERE id = ${p(3)}`, values: [email, email, id] };
    return { sql: `UPDATE {t} SET email_addr = ${p(1)}, n = n + 1 WHERE id = ${p(2)}`, values: [email, id] };
  };
  const writers = new MirrorWorkload(db, ['walk', 'walk_m'], next);

  beforeAll(async () => {
    await db.drop('walk', 'walk_m', 'walk_email_backup', 'shadowcut_history');
    for (const t of ['walk', 'walk_m']) {
      await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, email ${VARCHAR[kind]} NULL, n INT NOT NULL)`);
      await db.query(`INSERT INTO ${t} (id, email, n) SELECT g, CONCAT('Someone', g, '@Example.ORG'), 0 FROM (${db.series(ROWS)}) s`);
    }
  });
  afterAll(async () => {
    await writers.stop();
  });

  const shadowcut = async (...args: string[]) => {
    const run = await db.cliAsync([args[0], '--url', '$URL', '--table', 'walk', ...args.slice(1)]);
    expect(run.stderr, run.stderr).not.toMatch(/internal error|could not record/);
    return run;
  };
  /** Once every writer has asked for a statement of the new stage, none of the old stage is still running. */
  const seen: Stage[] = ['old', 'old', 'old'];
  const switchTo = async (next: Stage) => {
    stage = next;
    await waitFor(`every writer on the ${next} stage`, () => seen.every((s) => s === next), null);
  };

  it('walks plan, expand, backfill, verify, contract with writers running, and ends equal to the mirror', async () => {
    // 0. plan: a rename breaks running code, so the plan spells out the stages instead.
    const planned = await shadowcut('plan', '--alter', 'RENAME COLUMN email TO email_addr');
    expect(planned.code).toBe(0);
    for (const step of ['backfill', 'verify', 'contract']) expect(planned.stdout).toContain(`shadowcut ${step}`);

    writers.start();
    // 1. expand, in place: no rows copied while the application writes the old column.
    const expanded = await shadowcut('migrate', '--alter', `ADD COLUMN email_addr ${VARCHAR[kind]} NULL`, '--execute', '--json');
    expect(expanded.code, expanded.stderr).toBe(0);
    const result = JSON.parse(expanded.stdout.trim().split('\n').pop()!);
    expect(result).toMatchObject({ event: 'result', rowsCopied: 0, path: 'in-place' });
    await db.query(`ALTER TABLE walk_m ADD COLUMN email_addr ${VARCHAR[kind]} NULL`);

    // 2. the application writes both columns; 3. backfill the rest in keyset batches.
    await switchTo('both');
    const backfilled = await shadowcut('backfill', '--set', 'email_addr = email', '--where', 'email_addr IS NULL', '--execute');
    expect(backfilled.code, backfilled.stderr).toBe(0);
    await db.query('UPDATE walk_m SET email_addr = email WHERE email_addr IS NULL');
    expect((await shadowcut('backfill', '--set', 'email_addr = email', '--where', 'email_addr IS NULL', '--execute')).stdout).toMatch(
      /done: 0 row\(s\) updated/,
    );

    // 4. verify, while the application keeps both columns equal.
    const verified = await shadowcut('verify', '--expect', 'email_addr = email');
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);

    // 5. reads and writes switch to the new column; 6. contract, refused while a view still reads the old one.
    await switchTo('new');
    await db.query('CREATE VIEW walk_emails AS SELECT id, email FROM walk');
    const refused = await shadowcut('contract', '--drop-column', 'email', '--backup-to', 'walk_email_backup', '--execute');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/walk_emails/);
    await db.query('DROP VIEW walk_emails');
    // The backfill and verify that retired email are minutes old: the week's soak refuses, --min-soak 0 goes ahead (recorded).
    const soaking = await shadowcut('contract', '--drop-column', 'email', '--backup-to', 'walk_email_backup', '--execute');
    expect(soaking.code).toBe(2);
    expect(soaking.stderr).toMatch(/inside the soak: verify "[^"]*email_addr = email[^"]*" finished .* --min-soak 7d ends/);
    const contracted = await shadowcut('contract', '--drop-column', 'email', '--backup-to', 'walk_email_backup', '--execute', '--min-soak', '0');
    expect(contracted.code, contracted.stderr).toBe(0);
    // The backup keeps every email the table still had: the application no longer writes the column.
    const differs = kind === 'mysql' ? 'NOT (b.email <=> m.email)' : 'b.email IS DISTINCT FROM m.email';
    expect(await db.query(`SELECT m.id FROM walk_m m JOIN walk_email_backup b ON b.id = m.id WHERE ${differs}`)).toEqual([]);
    expect(await db.query('SELECT m.id FROM walk_m m LEFT JOIN walk_email_backup b ON b.id = m.id WHERE b.id IS NULL AND m.email IS NOT NULL')).toEqual([]);
    await db.query('ALTER TABLE walk_m DROP COLUMN email');

    const stats = await writers.stop();
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(0);
    expect(await db.differences('walk', 'walk_m')).toEqual([]);
    expect(await db.schema('walk')).toBe(await db.schema('walk_m'));

    const listed = await shadowcut('history', '--json');
    const timeline = listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as HistoryEntry);
    expect(timeline.map((e) => [e.command, e.outcome])).toEqual([
      ['plan', 'success'],
      ['migrate', 'success'],
      ['backfill', 'success'],
      ['backfill', 'success'],
      ['verify', 'success'],
      ['contract', 'success'],
    ]);
  }, 300_000);
});
