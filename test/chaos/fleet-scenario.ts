/**
 * One seed of the fleet path (`--path fleet`): one random table (grammar.ts) and ALTER over three to
 * five targets, each a database of its own on the engine's server with the table, its mirror and
 * writers of its own, changed by one `migrate --targets FILE --joint-cutover --parallel 2`. Half the
 * seeds hold one drawn target's table open in an application transaction for the whole run, so that
 * target cannot swap: the run must then fail and leave no target with the new table (every table
 * equal to its mirror, which never takes the ALTER). Otherwise every target must equal its mirror
 * after the native ALTER, or the run be refused as the server refuses, with every target untouched.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withDatabase } from '../support/database.js';
import { mysqlChaos, postgresChaos, type ChaosDb, type Session } from './database.js';
import { defaultsChangedBy, makeAlter, makeTable, type EngineKind } from './grammar.js';
import { Prng } from './prng.js';
import { cliRun, createAndFill, firstDifference, MIRROR, nativeAlter, pacingArgs, TABLE, type SeedOutcome } from './scenario.js';
import { Workload } from './workload.js';

export async function runFleetSeed(kind: EngineKind, baseUrl: string, cli: string, seed: number, rows: number): Promise<SeedOutcome> {
  const began = Date.now();
  const root = new Prng(seed);
  const t = makeTable(root.fork(1), kind);
  const alter = makeAlter(root.fork(2), t, root.fork(3));
  const count = root.fork(30).int(3, 5);
  const held = root.fork(31).chance(0.5) ? root.fork(32).int(0, count - 1) : null;
  const outcome = (verdict: SeedOutcome['verdict'], reason: string): SeedOutcome => ({
    engine: kind,
    seed,
    path: 'fleet',
    took: 'copy',
    reader: null,
    writer: null,
    verdict,
    reason: `${count} targets: ${reason}`,
    alter,
    faults: held === null ? [] : [`target ${held + 1}'s table held open by an application transaction`],
    seconds: (Date.now() - began) / 1000,
    capturedBy: null,
  });
  const names = Array.from({ length: count }, (_, i) => `chaos_fleet_${process.pid}_${i + 1}`);
  const admin = kind === 'mysql' ? mysqlChaos(baseUrl, null) : postgresChaos(baseUrl, null);
  const adminSession = await admin.session();
  for (const name of names) {
    await adminSession.query(kind === 'mysql' ? `DROP DATABASE IF EXISTS ${name}` : `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await adminSession.query(`CREATE DATABASE ${name}`);
  }
  const urls = names.map((n) => withDatabase(baseUrl, n));
  const dbs: ChaosDb[] = urls.map((url) => (kind === 'mysql' ? mysqlChaos(url, null) : postgresChaos(url, null)));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chaos-fleet-'));
  let hold: Session | null = null;
  try {
    for (const db of dbs) {
      const failed = await createAndFill(db, t, rows, root.fork(4));
      if (failed) return outcome('FAIL', failed);
    }
    const loads = dbs.map((db) => new Workload(db, t, [TABLE, MIRROR], rows, defaultsChangedBy(t, alter)));
    for (const [i, load] of loads.entries()) await load.start(root.fork(40 + i));
    if (held !== null) {
      hold = await dbs[held].session();
      await hold.query('BEGIN');
      await hold.query(`SELECT count(*) FROM ${kind === 'mysql' ? `\`${TABLE}\`` : `"${TABLE}"`}`);
    }
    const file = path.join(dir, 'targets');
    writeFileSync(file, urls.join('\n') + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    const args = [
      'migrate',
      '--execute',
      '--json',
      '--force-copy',
      '--targets',
      file,
      '--table',
      TABLE,
      '--alter',
      alter,
      '--joint-cutover',
      '--parallel',
      '2',
    ];
    const run = await cliRun(cli, [...args, ...pacingArgs(rows), '--cutover-attempts', '3'], () => null);
    await hold?.query('ROLLBACK');
    for (const load of loads) await load.stop();
    const said = run.stderr.trim().split('\n').pop() ?? '';
    if (run.code === 0) {
      if (held !== null) return outcome('FAIL', `the joint cut-over went through although target ${held + 1}'s table was held open`);
      for (const [i, db] of dbs.entries()) {
        const native = await nativeAlter(db, alter);
        if (native) return outcome('FAIL', `target ${i + 1} migrated, but the server's own ALTER fails: ${native}`);
        const differs = await differ(db);
        if (differs) return outcome('FAIL', `target ${i + 1} differs from its mirror: ${differs}`);
      }
      return outcome('pass', `every target equal to its mirror after the native ALTER`);
    }
    // Not swapped for good anywhere: every target as it was, equal to its mirror without the ALTER.
    for (const [i, db] of dbs.entries()) {
      const differs = await differ(db);
      if (differs) return outcome('FAIL', `the run failed (${said}), and target ${i + 1} was left changed: ${differs}`);
    }
    if (held !== null) return outcome('pass', `failed as it must with target ${held + 1} held (${said}), every target as it was`);
    const native = await nativeAlter(dbs[0], alter);
    return native ? outcome('refused like the server', `${said} / server: ${native}`) : outcome('refused', said);
  } finally {
    await hold?.close().catch(() => {}); // the seed's outcome is settled; only the session goes
    for (const db of dbs) await db.close();
    for (const name of names)
      await adminSession.query(kind === 'mysql' ? `DROP DATABASE IF EXISTS ${name}` : `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await adminSession.close();
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** How the target's table differs from its mirror (definition, then rows); null when equal. */
async function differ(db: ChaosDb): Promise<string | null> {
  const [ours, theirs] = [await db.definition(TABLE), await db.definition(MIRROR)];
  if (ours !== theirs) return `definition: ${firstDifference(ours, theirs)}`;
  const rows = await db.rowDifferences(TABLE, MIRROR);
  return rows ? `${rows} row(s): ${(await db.sampleDifferences(TABLE, MIRROR)).join(' | ')}` : null;
}
