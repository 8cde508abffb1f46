/**
 * One seed of the set path: two or three random tables, each with its mirror and its writers, changed
 * by one `migrate` with a --table/--alter pair each (several tables, one cut-over), maybe killed and
 * resumed. The oracle is the single-table one for every table, and a reader that reads all of them
 * in one statement must never see some tables swapped and others not.
 *
 * Half the seeds key the tables: the first is the parent of two children (`grammar.ts`, `children`),
 * one of which (`_cr`, RESTRICT) joins the set with an ALTER of its own, so its key is rebuilt
 * between the new tables; the other (`_cc`, CASCADE) stays outside the set, carried as in a
 * single-table run. The parent's writers write both children. The mirrors are changed as a DBA
 * must on MariaDB, whose own ALTER refuses a type a key uses: the set child's key dropped, the
 * ALTERs, the key added back.
 *
 * Two seeds in five take the set's revert window instead (`--force-copy --revert-window`): once the
 * windows open, `shadowcut revert` is asked of one drawn table (again until its window takes it), and
 * the drawn SIGKILL lands in the window, the resumed run asked in its turn. The mirrors then never take
 * the ALTERs: every table must equal its mirror, with only its `<table>__new` beside it.
 */
import { EXIT_NO_CHECKPOINT } from '../../src/core/engine/errors.js';
import type { ChaosDb } from './database.js';
import { Reader, type ReaderReport } from './reader.js';
import { defaultsChangedBy, makeAlter, makeTable } from './grammar.js';
import { alterOf, CHILD_ALTERS, nativeSet, setChildren, widensKey, type Member } from './set-keys.js';
import { Prng } from './prng.js';
import {
  catalogDiffers,
  childrenDiffer,
  cliRun,
  createAndFill,
  revertOutcome,
  revertRequest,
  firstDifference,
  MIRROR,
  pacingArgs,
  TABLE,
  waitedTooLong,
  type Exit,
  type SeedOutcome,
  type Verdict,
} from './scenario.js';
import { Workload } from './workload.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runSetSeed(db: ChaosDb, cli: string, seed: number, rows: number): Promise<SeedOutcome> {
  const began = Date.now();
  const root = new Prng(seed);
  const count = root.fork(20).int(2, 3);
  const tables = Array.from({ length: count }, (_, i) => makeTable(root.fork(100 + i), db.kind));
  const members: Member[] = tables.map((t, i) => ({
    name: `${TABLE}_${i}`,
    mirror: `${MIRROR}_${i}`,
    alter: makeAlter(root.fork(200 + i), t, root.fork(300 + i)),
  }));
  // Its own generator, so an unkeyed seed draws what it always drew. Not a partitioned parent: the
  // single-table path tests those.
  const keys = root.fork(21);
  const keyed = keys.chance(0.5) && !tables[0].partition;
  const childAlter = keyed ? keys.pick(CHILD_ALTERS[db.kind]) : null;
  let children: Member[] = [];
  if (keyed) tables[0].children = true;
  const faults = root.fork(3);
  // From 0 ms: the first table to start its copy, while another may still be making its shadow, before
  // its first checkpoint (a resumed member with none starts afresh, discarding what it had made).
  const kill = faults.chance(0.4) ? faults.int(0, 2500) : null;
  // A fork of its own, so the seeds without a window draw what they always drew.
  const way = root.fork(22);
  const windowed = way.chance(0.4);
  const revertAt = way.int(0, 1500);
  const revertOf = way.int(0, 10);
  // A fork of its own, so the seeds drawn before it draw what they always drew. Not with a window:
  // cascaded changes fire no trigger of the way back, so such a set is refused.
  const widen = keyed && !windowed && widensKey(db.kind, tables[0], root.fork(23));
  let took: SeedOutcome['took'] = null;
  const applied: string[] = [];
  let reader: SetReader | null = null;
  const outcome = (verdict: Verdict, reason: string, loads: Workload[] = []): SeedOutcome => ({
    engine: db.kind,
    seed,
    path: 'set',
    took,
    reader: reader?.report ?? null,
    writer: loads.length ? worstWriter(loads) : null,
    verdict,
    reason,
    alter: [...members, ...children].map((m) => `${m.name}: ${m.alter}`).join(' | '),
    faults: applied,
    seconds: (Date.now() - began) / 1000,
    capturedBy: null,
  });

  for (const [i, m] of members.entries()) {
    const failed = await createAndFill(db, tables[i], rows, root.fork(400 + i), undefined, [m.name, m.mirror]);
    if (failed) return outcome('FAIL', failed);
    // One table's refusal is the single-table path's to test; here each table gets an ALTER its rows take.
    for (let draw = 1; draw < 6 && (await refusedByRows(db, m)); draw++)
      m.alter = makeAlter(root.fork(200 + i + 10 * draw), tables[i], root.fork(300 + i + 10 * draw));
  }
  if (childAlter !== null) children = setChildren(members[0], childAlter, widen);
  // In place a table keeps its identity and the writers go on through the change: they never ask for
  // a default the ALTER changes (README.md, the in-place rule).
  const loads = members.map((m, i) => new Workload(db, tables[i], [m.name, m.mirror], rows, defaultsChangedBy(tables[i], m.alter)));
  for (const [i, load] of loads.entries()) await load.start(root.fork(500 + i), 2);
  const set = [...members, ...children];
  reader = new SetReader(
    db,
    set.map((m) => m.name),
  );
  await reader.start();
  const args = [
    'migrate',
    '--url',
    db.url,
    ...set.flatMap((m) => ['--table', m.name, '--alter', alterOf(db, m, m.name)]),
    '--execute',
    '--json',
    // A revert keeps each new table as <table>__new; a window cannot drop the old tables it follows.
    ...(windowed ? ['--force-copy', '--revert-window', '10m'] : ['--drop-old']),
    '--chunk-time-ms',
    '30',
    ...pacingArgs(rows),
  ];
  let last: Exit;
  const asked: Promise<void>[] = [];
  let running = true;
  // The way back, asked of one table of the set once a window is open; its window may open after another's.
  const askRevert = () => {
    const table = set[revertOf % set.length].name;
    asked.push(
      (async () => {
        await sleep(revertAt);
        while (running && (await revertRequest(cli, table)) !== 0) await sleep(200);
      })(),
    );
  };
  try {
    const taken = (phase: string) => {
      if (phase === 'in-place') took = 'in-place';
      if (phase === 'setup' || phase === 'copy') took = 'copy';
    };
    let armed = false;
    const first = await cliRun(cli, args, (phase) => {
      taken(phase);
      if (phase !== (windowed ? 'revert window' : 'copy') || armed) return null;
      armed = true;
      if (windowed && kill === null) askRevert();
      return kill;
    });
    last = first;
    if (first.killed) {
      applied.push(`SIGKILL ${kill} ms into the ${windowed ? 'revert window' : 'copy'}, then --resume`);
      let resumedWindow = false;
      last = await cliRun(cli, [...args, '--resume'], (phase) => {
        taken(phase);
        if (windowed && phase === 'revert window' && !resumedWindow) {
          resumedWindow = true;
          askRevert();
        }
        return null;
      });
      // Killed after every table's cleanup removed its checkpoint: the set was complete, as the oracle will tell.
      if (last.code === EXIT_NO_CHECKPOINT) last = { ...last, code: 0 };
    }
    await sleep(300);
  } finally {
    running = false;
    await Promise.allSettled(asked);
    for (const load of loads) await load.stop();
    await reader.stop();
  }
  const writer = worstWriter(loads);
  const blocked = reader.report.errors
    ? `a reader got ${reader.report.errors} error(s): ${reader.report.firstError}`
    : reader.mixed
      ? `a reader saw the set half swapped: ${reader.mixed}`
      : (waitedTooLong(db.kind, took, 'a reader', reader.report, last.parts) ?? waitedTooLong(db.kind, took, 'a writer', writer, last.parts));

  if (last.code === 0) {
    // Reverted: every table is the original again, with every write; the mirrors never took the ALTERs.
    const native = windowed ? null : await nativeSet(db, set, children, tables[0]);
    if (native !== null) return outcome('FAIL', `shadowcut migrated the set, but the server's own ALTERs fail: ${native}`, loads);
    if (windowed && revertOutcome(last.stdout) !== 'reverted') return outcome('FAIL', `the set ended without reverting (${revertOutcome(last.stdout)})`, loads);
    for (const m of set) {
      const wrong = await differsFromMirror(db, m, windowed);
      if (wrong) return outcome('FAIL', wrong, loads);
    }
    const outside = await childrenDiffer(db, tables[0], members[0].name, members[0].mirror);
    if (outside) return outcome('FAIL', outside, loads);
    if (blocked) return outcome('FAIL', blocked, loads);
    const transactions = loads.reduce((n, l) => n + l.transactions, 0);
    return outcome(
      'pass',
      `${set.length} tables${children.length ? (children.length > 1 ? ' (keyed, the key widened)' : ' (keyed)') : ''} ${took ?? 'no path'}${windowed ? ' and reverted' : ''}, ${transactions} transactions during the run, a reader waited at most ${reader.report.longestMs} ms, a writer ${writer.longestMs} ms`,
      loads,
    );
  }
  const lines = last.stderr.trim().split('\n').filter(Boolean);
  const reason = lines.find((l) => l.startsWith('shadowcut: ')) ?? lines.pop() ?? `exit ${last.code}`;
  if (/^\s+at /m.test(last.stderr)) return outcome('FAIL', `a stack trace: ${reason}`, loads);
  if (last.code === null) return outcome('FAIL', `timed out: ${reason}`, loads);
  // Refused: every table as it was, nothing left.
  for (const m of set) {
    const wrong = await differsFromMirror(db, m);
    if (wrong) return outcome('FAIL', `refused (${reason}) but ${wrong}`, loads);
  }
  const outside = await childrenDiffer(db, tables[0], members[0].name, members[0].mirror);
  if (outside) return outcome('FAIL', `refused (${reason}) but ${outside}`, loads);
  if (blocked) return outcome('FAIL', `refused (${reason}), and ${blocked}`, loads);
  const native = await nativeSet(db, set, children, tables[0]);
  return outcome(native !== null ? 'refused like the server' : 'refused', `${reason}${native !== null ? ` / server: ${native}` : ''}`, loads);
}

/**
 * Whether the server's own ALTER fails on the mirror's rows: PostgreSQL tries it on the mirror and
 * rolls it back; MySQL, whose DDL commits, tries it on a copy of the mirror.
 */
async function refusedByRows(db: ChaosDb, m: Member): Promise<boolean> {
  const session = await db.session();
  const trial = `${m.mirror}_try`;
  try {
    if (db.kind === 'postgres') {
      await session.query('BEGIN');
      await session.query(`ALTER TABLE "${m.mirror}" ${alterOf(db, m, m.mirror)}`);
    } else {
      await session.query(`DROP TABLE IF EXISTS \`${trial}\``);
      await session.query(`CREATE TABLE \`${trial}\` LIKE \`${m.mirror}\``);
      await session.query(`INSERT INTO \`${trial}\` SELECT * FROM \`${m.mirror}\``);
      await session.query(`ALTER TABLE \`${trial}\` ${m.alter}`);
    }
    return false;
  } catch {
    return true;
  } finally {
    await session.query(db.kind === 'postgres' ? 'ROLLBACK' : `DROP TABLE IF EXISTS \`${trial}\``).catch(() => {});
    await session.close();
  }
}

/** What the single-table oracle asks of one table of the set, or null; the tables' names taken out, as a key names its parent. */
async function differsFromMirror(db: ChaosDb, m: Member, reverted = false): Promise<string | null> {
  const left = (await db.leftovers(m.name)).filter((t) => !reverted || t !== `${m.name}__new`);
  if (left.length) return `left behind: ${left.join(', ')}`;
  const [ours, theirs] = [(await db.definition(m.name)).replaceAll(TABLE, 'P'), (await db.definition(m.mirror)).replaceAll(MIRROR, 'P')];
  if (ours !== theirs) return `${m.name}'s definition differs: ${firstDifference(ours, theirs)}`;
  const catalog = await catalogDiffers(db, m.name, m.mirror);
  if (catalog) return `${m.name}: ${catalog}`;
  const differing = await db.rowDifferences(m.name, m.mirror);
  if (differing) return `${differing} row(s) of ${m.name} differ from the mirror: ${(await db.sampleDifferences(m.name, m.mirror)).join(' / ')}`;
  return null;
}

function worstWriter(loads: Workload[]): { longestMs: number; longestAt: number } {
  const worst = loads.reduce((a, b) => (b.longestMs > a.longestMs ? b : a));
  return { longestMs: worst.longestMs, longestAt: worst.longestAt };
}

/**
 * Reads every table of the set in one statement, timed as the single-table reader is. On
 * PostgreSQL each table's relation id comes with it (a copied table has a new one): a statement
 * that sees some tables still with the first ids it saw and others with new ones saw the set half swapped.
 */
class SetReader {
  mixed: string | null = null;
  private first: string[] | null = null;
  private readonly reader: Reader;

  constructor(db: ChaosDb, tables: string[]) {
    const statement =
      db.kind === 'mysql'
        ? `SELECT ${tables.map((t) => `(SELECT 1 FROM \`${t}\` LIMIT 1)`).join(', ')}`
        : // A table emptied by the writers reads no id: the subquery still takes the table's lock.
          `SELECT ${tables.map((t) => `(SELECT coalesce(min(tableoid::oid::text), '-') FROM (SELECT tableoid FROM "${t}" LIMIT 1) x)`).join(', ')}`;
    this.reader = new Reader(db, tables[0], { statement, judge: db.kind === 'postgres' ? (row) => this.judge(row.map(String)) : undefined });
  }

  get report(): ReaderReport {
    return this.reader.report;
  }

  start(): Promise<void> {
    return this.reader.start();
  }

  async stop(): Promise<void> {
    await this.reader.stop();
  }

  private judge(ids: string[]): void {
    if (ids.includes('-')) return;
    this.first ??= ids;
    const kept = ids.filter((id, i) => id === this.first![i]).length;
    if (kept > 0 && kept < ids.length) this.mixed ??= `relation ids ${ids.join(', ')} against ${this.first.join(', ')} at first`;
  }
}
