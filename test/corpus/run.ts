/**
 * Runs gh-ost's localtests corpus against shadowcut on MariaDB, the way gh-ost's own
 * localtests/test.sh runs it against gh-ost. See README.md beside this file for the method.
 *
 *   npm run test:corpus [-- <regexp on case names>]
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type mysql from 'mysql2/promise';
import { ignoredOn, injectedSql, listCases, readCase, FLAG_TABLE, type CaseDef } from './corpus.js';
import {
  binlogEventsSince,
  client,
  connect,
  endpoint,
  loadSql,
  masterStatus,
  replicateUntil,
  rows,
  syncReplica,
  urlOf,
  type BinlogEvent,
  type BinlogPos,
  type Endpoint,
} from './db.js';
import { closingLine, LABEL, resultsSection, updateDoc, type CaseResult, type RunInfo, type Status } from './report.js';

// dist/test/corpus/run.js or test/corpus/run.ts: the repository is three levels up from dist, two from test.
const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, here.includes('/dist/') ? '../../..' : '../..');
const env = process.env;
const CORPUS = resolve(REPO, env.SHADOWCUT_GHOST_CORPUS ?? '../shared/peers/gh-ost-localtests');
const CLI = resolve(REPO, env.SHADOWCUT_CORPUS_CLI ?? 'dist/bin/shadowcut.js');
const RESULTS = resolve(REPO, env.SHADOWCUT_CORPUS_RESULTS ?? 'test/corpus/results');
const DOC = resolve(REPO, 'docs/gh-ost-corpus.md');
const DB = env.SHADOWCUT_CORPUS_DB ?? 'shadowcut_corpus';
const CASE_TIMEOUT_MS = Number(env.SHADOWCUT_CORPUS_TIMEOUT_S ?? 120) * 1000;
/** How long the EVENT writes before shadowcut starts (gh-ost's harness: "graceful sleep" of 1 s). */
const WARMUP_MS = Number(env.SHADOWCUT_CORPUS_WARMUP_MS ?? 1500);
/** How long the cut-over is held back after the copy, so the EVENT's writes go through the binlog path. */
const HOLD_MS = Number(env.SHADOWCUT_CORPUS_HOLD_MS ?? 3000);
/**
 * How the cut-over is held back: `flag` uses shadowcut's own --postpone-cutover-flag-file (when its
 * --help lists it), `lock` a shared-write metadata lock from the runner's session (any version).
 */
const HOLD_HOW = env.SHADOWCUT_CORPUS_HOLD ?? 'flag';
/** Optional server time zone for the run (e.g. +02:00): conversions between DATETIME and TIMESTAMP depend on it. */
const TIME_ZONE = env.SHADOWCUT_CORPUS_TIME_ZONE ?? '';

/**
 * expect_failure cases whose refusal is a limitation of gh-ost itself, not a property of the change:
 * shadowcut may migrate them, but only with the same checks as any other case (data equal at the
 * cut-over point, the schema a native ALTER gives); failing those checks still fails the case.
 */
const GHOST_ONLY_REFUSALS: Record<string, string> = {
  'modify-change-case-pk':
    'gh-ost matches column names case-sensitively, so `MODIFY ID` looks to it like a new key column; MySQL and MariaDB ' +
    'treat ID and id as the same column, and the key is unchanged.',
  'fail-fk-parent':
    'gh-ost refuses a table other tables reference; shadowcut points their keys at the new table under the cut-over lock ' +
    '(src/engines/mysql/cutover/child-keys.ts).',
  'fail-drop-pk':
    "gh-ost needs a unique key the old and new table share; shadowcut finds rows by the old key through an index of the shadow's own " +
    'while the copy runs, dropped under the cut-over lock (src/engines/mysql/copy/helper-key.ts).',
  'fail-no-shared-uk':
    "gh-ost needs a unique key the old and new table share; shadowcut finds rows by the old key through an index of the shadow's own " +
    'while the copy runs, dropped under the cut-over lock (src/engines/mysql/copy/helper-key.ts).',
  'fail-fk':
    'gh-ost refuses a table with foreign keys to other tables; shadowcut moves them to the new table at the cut-over, under their ' +
    'names, with the parents locked READ meanwhile (src/engines/mysql/cutover/parent-keys.ts).',
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const q = (name: string) => '`' + name.replace(/`/g, '``') + '`';

interface Outcome {
  status: Status;
  detail: string;
}
const outcome = (status: Status, detail: string): Outcome => ({ status, detail });

interface RunContext {
  table: string;
  alter: string;
  start: BinlogPos;
  schemaBefore: string | null;
  tablesBefore: string[];
  /** gtid-resume: the first run, killed during its copy. */
  interrupted: ToolRun | null;
}

interface ToolRun {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  stderr: string;
  phases: string[];
  warnings: string[];
  /** The last line of stderr: shadowcut's one-line error. */
  error: string;
  /** The closing `result` object of --json output, if any. */
  result: Record<string, unknown> | null;
}

/** A session holding a shared-write metadata lock on the table: shadowcut's LOCK TABLES waits behind it. */
class CutoverHold {
  private constructor(private conn: mysql.Connection | null) {}

  static async take(e: Endpoint, database: string, table: string): Promise<CutoverHold> {
    const conn = await connect(e);
    await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await conn.query('START TRANSACTION');
    // FOR UPDATE opens the table for writing (MDL_SHARED_WRITE) but matches no row: no row or gap locks.
    await conn.query(`SELECT 1 FROM ${q(database)}.${q(table)} WHERE 1 = 0 FOR UPDATE`);
    return new CutoverHold(conn);
  }

  async release(): Promise<void> {
    const conn = this.conn;
    this.conn = null;
    if (!conn) return;
    await conn.query('ROLLBACK').catch(() => {});
    await conn.end().catch(() => conn.destroy());
  }
}

class Harness {
  private primary!: mysql.Connection;
  private replica!: mysql.Connection;
  private version = '';
  private versionComment = '';
  private originalGlobals: Record<string, string> = {};
  private toolHelp = '';
  readonly db: Endpoint;
  readonly replicaDb: Endpoint;
  private log: string[] = [];

  constructor(
    readonly primaryUrl: string,
    readonly replicaUrl: string,
  ) {
    this.db = endpoint(primaryUrl, DB);
    this.replicaDb = endpoint(replicaUrl, DB);
  }

  async open(): Promise<void> {
    this.primary = await connect(this.db);
    this.replica = await connect(this.replicaDb);
    const [v] = await rows(this.primary, 'SELECT @@version AS v, @@version_comment AS c, @@global.event_scheduler AS e');
    this.version = String(v.v);
    this.versionComment = String(v.c);
    if (!/mariadb/i.test(this.version)) console.warn(`warning: ${this.version} is not MariaDB; the corpus runner is written for MariaDB`);
    // gh-ost's harness: "set global event_scheduler := 1".
    if (String(v.e) !== 'ON') await this.primary.query('SET GLOBAL event_scheduler = ON');
    const [g] = await rows(this.primary, 'SELECT @@global.sql_mode AS m, @@global.max_binlog_cache_size AS c');
    this.originalGlobals = { sql_mode: String(g.m), max_binlog_cache_size: String(g.c) };
    const [r] = await rows(this.replica, 'SELECT @@global.sql_mode AS m');
    this.originalGlobals.replica_sql_mode = String(r.m);
    if (TIME_ZONE) {
      // Every session opened from now on (the cases' clients, the EVENTs, shadowcut) starts in this zone.
      const [z] = await rows(this.primary, 'SELECT @@global.time_zone AS p');
      const [zr] = await rows(this.replica, 'SELECT @@global.time_zone AS r');
      this.originalGlobals.time_zone = String(z.p);
      this.originalGlobals.replica_time_zone = String(zr.r);
      await this.primary.query('SET GLOBAL time_zone = ?', [TIME_ZONE]);
      await this.replica.query('SET GLOBAL time_zone = ?', [TIME_ZONE]);
    }
    await syncReplica(this.primary, this.replica);
    const help = spawnSync(process.execPath, [CLI, 'migrate', '--help'], { encoding: 'utf8' });
    if (help.status !== 0 && !help.stdout) throw new Error(`cannot run ${CLI}: ${help.stderr}`);
    this.toolHelp = help.stdout + help.stderr;
  }

  get server(): string {
    return `${this.version} (${this.versionComment})${TIME_ZONE ? `, global time_zone ${TIME_ZONE}` : ''}`;
  }

  async close(): Promise<void> {
    await this.primary.query(`DROP DATABASE IF EXISTS ${q(DB)}`).catch(() => {});
    await this.restoreGlobals().catch(() => {});
    if (this.originalGlobals.time_zone) {
      await this.primary.query('SET GLOBAL time_zone = ?', [this.originalGlobals.time_zone]).catch(() => {});
      await this.replica.query('SET GLOBAL time_zone = ?', [this.originalGlobals.replica_time_zone]).catch(() => {});
    }
    await this.primary.end().catch(() => {});
    await this.replica.end().catch(() => {});
  }

  private note(line: string): void {
    this.log.push(`[${new Date().toISOString()}] ${line}`);
  }

  async run(c: CaseDef): Promise<CaseResult> {
    const t0 = Date.now();
    this.log = [];
    let result: Outcome;
    try {
      result = await this.runCase(c);
    } catch (error) {
      result = outcome('failed', `harness error: ${(error as Error).message}`);
      this.note(`harness error: ${(error as Error).stack}`);
    } finally {
      await this.replica.query('START SLAVE').catch(() => {});
      await this.restoreGlobals().catch((e) => this.note(`could not restore globals: ${e.message}`));
    }
    this.note(`RESULT: ${LABEL[result.status]}: ${result.detail}`);
    writeFileSync(join(RESULTS, `${c.name}.log`), this.log.join('\n') + '\n');
    return { name: c.name, ...result, seconds: (Date.now() - t0) / 1000 };
  }

  private async restoreGlobals(): Promise<void> {
    const cache = this.originalGlobals.max_binlog_cache_size;
    if (!/^\d+$/.test(cache)) throw new Error(`unexpected max_binlog_cache_size ${cache}`);
    await this.primary.query(`SET GLOBAL sql_mode = ?, GLOBAL max_binlog_cache_size = ${cache}`, [this.originalGlobals.sql_mode]);
    await this.replica.query('SET GLOBAL sql_mode = ?', [this.originalGlobals.replica_sql_mode]);
  }

  private skipReason(c: CaseDef): string | null {
    if (c.ignoreVersions && ignoredOn(c.ignoreVersions, this.version, this.versionComment, 'MariaDB')) {
      return `ignore_versions "${c.ignoreVersions}" matches ${this.version}`;
    }
    if (c.name === 'sysbench' && spawnSync('sysbench', ['--version']).status !== 0) {
      return "sysbench is not installed (gh-ost's harness skips this case likewise); apt-get install sysbench to run it";
    }
    if (c.customScript) {
      const postpone = c.flags.some((f) => f.name === 'postpone-cut-over-flag-file');
      if (postpone && injectedSql(c.customScript)) return null;
      if (c.flags.some((f) => f.name === 'checkpoint-seconds')) {
        return this.supports('resume') ? null : 'needs an interrupted run to be resumed; shadowcut migrate has no --resume yet';
      }
      return 'custom test.sh that the runner does not emulate';
    }
    return null;
  }

  /** Whether `shadowcut migrate --help` lists this option. */
  private supports(option: string): boolean {
    return new RegExp(`--${option}\\b`).test(this.toolHelp);
  }

  /** gh-ost flags that become shadowcut options (see FLAG_TABLE); only those shadowcut offers. */
  private optionsFor(c: CaseDef): string[] {
    const out: string[] = [];
    for (const name of ['discard-foreign-keys', 'include-triggers', 'trigger-suffix', 'remove-trigger-suffix-if-exists']) {
      const flag = c.flags.find((f) => f.name === name);
      if (flag && this.supports(name)) out.push(flag.value === null ? `--${name}` : `--${name}=${flag.value}`);
    }
    return out;
  }

  private async runCase(c: CaseDef): Promise<Outcome> {
    const skip = this.skipReason(c);
    if (skip) return outcome('skipped', skip);
    for (const f of c.flags) {
      const t = FLAG_TABLE[f.name];
      this.note(`flag --${f.name}${f.value === null ? '' : `=${f.value}`}: ${t ? `${t.treatment}: ${t.how}` : 'unknown to the runner: ignored'}`);
    }

    // Fresh database: leftovers of the previous case (events, helper tables) cannot interfere.
    await this.primary.query(`DROP DATABASE IF EXISTS ${q(DB)}`);
    await this.primary.query(`CREATE DATABASE ${q(DB)}`);
    await syncReplica(this.primary, this.replica);

    if (c.sqlMode !== null) {
      await this.primary.query('SET GLOBAL sql_mode = ?', [c.sqlMode]);
      await this.replica.query('SET GLOBAL sql_mode = ?', [c.sqlMode]);
    }
    try {
      await loadSql(this.db, c.createSql, 'create.sql');
    } catch (error) {
      return outcome('skipped', `create.sql does not load on this server (MySQL-only syntax or feature): ${(error as Error).message}`);
    }

    const table = c.name === 'sysbench' ? 'sbtest1' : 'gh_ost_test';
    let sysbench: ReturnType<typeof spawn> | null = null;
    if (c.name === 'sysbench') sysbench = await this.startSysbench();
    try {
      if (c.beforeSql) await loadSql(this.db, c.beforeSql, 'before.sql');
      const alter = c.alter;
      const schemaBefore = await this.showCreate(this.primary, table);
      const tablesBefore = await this.tables();
      // The replica stays where it is until we let it run up to the cut-over (see compare()).
      await this.replica.query('STOP SLAVE SQL_THREAD');
      const start = await masterStatus(this.primary);
      this.note(`binlog at ${start.file}:${start.pos}; alter: ${alter}`);

      const injection = c.customScript ? injectedSql(c.customScript) : null;
      const resume = c.flags.some((f) => f.name === 'checkpoint-seconds');
      const holding = HOLD_MS > 0 || injection !== null;
      const flagFile = holding && HOLD_HOW === 'flag' && this.supports('postpone-cutover-flag-file') ? join(RESULTS, `${c.name}.postpone`) : null;
      if (flagFile) writeFileSync(flagFile, 'postponed by the corpus runner\n');
      const hold = holding && !flagFile ? await CutoverHold.take(this.db, DB, table) : null;
      const release = async () => {
        if (flagFile) rmSync(flagFile, { force: true });
        await hold?.release();
      };
      this.note(`cut-over held back by ${flagFile ? `--postpone-cutover-flag-file ${flagFile}` : hold ? 'a metadata lock' : 'nothing'}`);
      await sleep(WARMUP_MS);

      let run: ToolRun;
      let first: ToolRun | null = null;
      const afterCopy = async () => {
        if (injection) {
          const r = await client(this.db, [], injection);
          this.note(`injected after the copy (exit ${r.code}${r.stderr ? `: ${r.stderr}` : ''}):\n${injection}`);
          await sleep(5000);
        } else {
          await sleep(HOLD_MS);
        }
        await release();
      };
      try {
        const args = ['migrate', '--force-copy', '--url', urlOf(this.db), '--table', table, '--alter', alter, '--execute', '--json', ...this.optionsFor(c)];
        if (flagFile) args.push('--postpone-cutover-flag-file', flagFile);
        if (resume) {
          first = await this.shadowcut(args, { killInCopy: true });
          if (flagFile) writeFileSync(flagFile, 'postponed by the corpus runner\n');
          this.note(`first run killed during the copy: ${first.signal ?? first.code}`);
          run = await this.shadowcut([...args, '--resume'], { afterCopy });
        } else {
          run = await this.shadowcut(args, { afterCopy });
        }
      } finally {
        await release();
      }
      sysbench?.kill('SIGTERM');

      if (c.afterSql) await loadSql(this.db, c.afterSql, 'after.sql').catch((e) => this.note(e.message));
      if (c.sqlMode !== null) await this.restoreGlobals();
      if (c.destroySql) await loadSql(this.db, c.destroySql, 'destroy.sql').catch((e) => this.note(e.message));

      const ctx: RunContext = { table, alter, start, schemaBefore, tablesBefore, interrupted: first };
      if (c.expectFailure !== null) return await this.judgeRefusal(c, run, ctx);
      return await this.judgeSuccess(c, run, ctx);
    } finally {
      sysbench?.kill('SIGTERM');
    }
  }

  private async startSysbench(): Promise<ReturnType<typeof spawn>> {
    const conn = [
      `--mysql-host=${this.db.host}`,
      `--mysql-port=${this.db.port}`,
      `--mysql-user=${this.db.user}`,
      `--mysql-password=${this.db.password}`,
      `--mysql-db=${DB}`,
      '--tables=1',
    ];
    const prep = spawnSync('sysbench', ['oltp_write_only', ...conn, '--table-size=20000', 'prepare'], { encoding: 'utf8' });
    if (prep.status !== 0) throw new Error(`sysbench prepare failed: ${prep.stderr || prep.stdout}`);
    const child = spawn('sysbench', ['oltp_write_only', ...conn, '--rand-seed=163', '--threads=2', '--time=30', '--report-interval=10', '--rate=200', 'run'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => this.note(`sysbench: ${d.toString().trim()}`));
    child.stderr?.on('data', (d: Buffer) => this.note(`sysbench: ${d.toString().trim()}`));
    return child;
  }

  /** Runs the CLI like an operator, with the per-case timeout; `afterCopy` fires once the copy phase is over. */
  private shadowcut(args: string[], o: { afterCopy?: () => Promise<void>; killInCopy?: boolean }): Promise<ToolRun> {
    this.note(`$ shadowcut ${args.map((a) => (/[\s'"`]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
    return new Promise((resolvePromise) => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      const phases: string[] = [];
      const warnings: string[] = [];
      let stderr = '';
      let buffered = '';
      let timedOut = false;
      let hook: Promise<void> | null = null;
      let result: Record<string, unknown> | null = null;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
      }, CASE_TIMEOUT_MS);
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          this.note(`shadowcut: ${line}`);
          let ev: { event?: string; phase?: string; message?: string; rowsCopied?: number };
          try {
            ev = JSON.parse(line);
          } catch {
            continue;
          }
          if (ev.event === 'warning' && ev.message) warnings.push(ev.message);
          if (ev.event === 'result') result = ev;
          // Killed once a chunk is in the shadow: the interrupted run leaves a partial copy behind.
          if (o.killInCopy && ev.event === 'progress' && (ev.rowsCopied ?? 0) > 0) child.kill('SIGKILL');
          if (ev.event !== 'phase' || !ev.phase) continue;
          phases.push(ev.phase);
          if (!hook && o.afterCopy && !['checks', 'setup', 'copy'].includes(ev.phase)) hook = o.afterCopy();
        }
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      child.on('close', async (code, signal) => {
        clearTimeout(timer);
        if (hook) await hook.catch((e) => this.note(`after-copy step failed: ${e.message}`));
        for (const line of stderr.trim().split('\n')) if (line) this.note(`shadowcut stderr: ${line}`);
        this.note(`shadowcut exited with ${signal ?? code}${timedOut ? ' (timed out)' : ''}`);
        const lines = stderr.trim().split('\n').filter(Boolean);
        // An internal error prints a stack: its first line is the message.
        const internal = lines.findIndex((l) => l.startsWith('shadowcut: internal error'));
        resolvePromise({
          code,
          signal,
          timedOut,
          stderr,
          phases,
          warnings,
          error: internal >= 0 ? lines[internal] : (lines[lines.length - 1] ?? ''),
          result,
        });
      });
    });
  }

  private async showCreate(conn: mysql.Connection, table: string, database = DB): Promise<string | null> {
    const r = await rows(conn, `SHOW CREATE TABLE ${q(database)}.${q(table)}`).catch(() => null);
    return r ? String(r[0]['Create Table']) : null;
  }

  private normalise(create: string | null): string {
    return (create ?? '').replace(/^CREATE TABLE `[^`]+`/, 'CREATE TABLE t').replace(/ AUTO_INCREMENT=\d+/, '');
  }

  private async tables(): Promise<string[]> {
    const r = await rows(this.primary, 'SELECT TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [DB]);
    return r.map((x) => String(x.t));
  }

  /**
   * Tables that exist now and did not before shadowcut ran (whatever shadowcut names its helpers),
   * but `shadowcut_history`, the timeline an executed run is documented to keep beside its tables.
   */
  private async newTables(ctx: RunContext): Promise<string[]> {
    return (await this.tables()).filter((t) => !ctx.tablesBefore.includes(t) && t !== 'shadowcut_history');
  }

  private async judgeRefusal(c: CaseDef, run: ToolRun, ctx: RunContext): Promise<Outcome> {
    const { table, start, schemaBefore } = ctx;
    const expected = c.expectFailure || '(any failure)';
    if (run.timedOut) return outcome('failed', `timed out after ${CASE_TIMEOUT_MS / 1000} s; expected a refusal: "${expected}"`);
    if (run.code === 0) {
      const verified = await this.judgeSuccess(c, run, ctx).catch((e) => outcome('failed', e.message));
      const limitation = GHOST_ONLY_REFUSALS[c.name];
      if (limitation && verified.status === 'passed') {
        return outcome('passed', `gh-ost refuses ("${expected}"), shadowcut migrates it and the result is verified: ${verified.detail}. ${limitation}`);
      }
      return outcome(
        'failed',
        `expected a refusal ("${expected}") but the migration succeeded` +
          (verified.status === 'passed' ? ' (and the data compares equal)' : `; and the result is wrong: ${verified.detail}`),
      );
    }
    const problems: string[] = [];
    const left = await this.newTables(ctx);
    if (left.length) problems.push(`left helper tables behind: ${left.join(', ')}`);
    const schemaAfter = await this.showCreate(this.primary, table);
    if (this.normalise(schemaAfter) !== this.normalise(schemaBefore)) problems.push('the original table was changed');
    if (problems.length) return outcome('failed', `refused (${run.error}) but ${problems.join('; ')}`);
    // Up front = nothing was created before the refusal.
    const events = await binlogEventsSince(this.primary, start);
    const touched = events.some((e) => {
      const created = e.type === 'Query' ? e.info.match(/CREATE\s+TABLE\s+(?:`[^`]+`\.)?`([^`]+)`/i) : null;
      return created !== null && created[1] !== table && !ctx.tablesBefore.includes(created[1]);
    });
    const wording = normalise(run.error).includes(normalise(c.expectFailure ?? '')) ? 'same message' : `gh-ost says "${expected}"`;
    const internal = run.error.startsWith('shadowcut: internal error') ? ', reported as an internal error with a stack trace' : '';
    return outcome(
      'refused',
      `${touched ? 'stopped during the run, helpers removed' : 'refused up front, nothing changed'}${internal}: ` +
        `"${run.error.replace(/^shadowcut: (internal error: )?/, '')}" (${wording})`,
    );
  }

  private async judgeSuccess(c: CaseDef, run: ToolRun, ctx: RunContext): Promise<Outcome> {
    const { table, alter, start } = ctx;
    if (run.timedOut) return outcome('failed', `timed out after ${CASE_TIMEOUT_MS / 1000} s (phases: ${run.phases.join(' > ')})`);
    if (run.code !== 0) return outcome('failed', `shadowcut exited ${run.signal ?? run.code}: ${run.error || '(no message)'}`);

    // 1. Freeze the replica just before the cut-over's RENAME: there, as in gh-ost's --test-on-replica
    //    check, the original and the shadow are both complete and no later write has reached either.
    const events = await binlogEventsSince(this.primary, start);
    const renameAt = events.findIndex((e) => e.type === 'Query' && renames(e.info, table) !== null);
    if (renameAt < 0) return outcome('failed', `shadowcut exited 0 but no RENAME of ${table} is in the binlog`);
    const { old, ghost } = renames(events[renameAt].info, table)!;
    let gtidAt = renameAt - 1;
    while (gtidAt >= 0 && events[gtidAt].type !== 'Gtid') gtidAt--;
    const until: BinlogPos = gtidAt >= 0 ? { file: events[gtidAt].file, pos: events[gtidAt].pos } : events[renameAt];
    const writes = rowEventsDuringRun(events.slice(0, renameAt), DB, table, ghost);
    await replicateUntil(this.replica, until);
    this.note(`replica stopped at ${until.file}:${until.pos}, before: ${events[renameAt].info}`);

    const problems: string[] = [];
    if (c.expectTableStructure) {
      const create = await this.showCreate(this.replica, ghost);
      if (!create?.includes(c.expectTableStructure)) {
        problems.push(`migrated table structure lacks "${c.expectTableStructure}": ${create?.replace(/\s+/g, ' ')}`);
      }
    }
    const order = await this.orderBy(c, table, ghost);
    const origSql = `select ${c.origColumns} from ${q(table)} ${order}`;
    const ghostSql = `select ${c.ghostColumns} from ${q(ghost)} ${order}`;
    const [a, b] = [await client(this.replicaDb, ['-ss', '-e', origSql]), await client(this.replicaDb, ['-ss', '-e', ghostSql])];
    if (a.code !== 0 || b.code !== 0) return outcome('failed', `comparison query failed: ${a.stderr || b.stderr}`);
    const rowsA = a.stdout.length ? a.stdout.toString('latin1').split('\n').length - 1 : 0;
    const md5 = (x: Buffer) => createHash('md5').update(x).digest('hex');
    if (md5(a.stdout) !== md5(b.stdout)) {
      writeFileSync(join(RESULTS, `${c.name}.orig.tsv`), a.stdout);
      writeFileSync(join(RESULTS, `${c.name}.ghost.tsv`), b.stdout);
      problems.push(`checksum mismatch at the cut-over point: ${firstDifference(a.stdout, b.stdout)}`);
    }
    await this.replica.query('START SLAVE');

    // 2. On the primary: helpers gone except the kept original, and the schema a native ALTER gives.
    const left = await this.newTables(ctx);
    const extra = left.filter((t) => t !== old);
    if (extra.length) problems.push(`left helper tables behind: ${extra.join(', ')}`);
    if (!left.includes(old)) problems.push(`the original was not kept as ${old}`);
    // A case that discards the keys (gh-ost's --discard-foreign-keys) expects a table without them: LIKE gives that.
    const before = this.optionsFor(c).includes('--discard-foreign-keys') ? null : ctx.schemaBefore;
    const schema = left.includes(old) ? await this.nativeSchemaCheck(table, old, alter, before) : null;
    if (schema) problems.push(schema);

    let resumed = '';
    if (ctx.interrupted) {
      // A resumed run continues the interrupted run's shadow; a fresh start would create it again.
      const creations = events.slice(0, renameAt).filter((e) => e.type === 'Query' && /CREATE\s+TABLE/i.test(e.info) && e.info.includes(`\`${ghost}\``));
      if (ctx.interrupted.signal !== 'SIGKILL')
        problems.push(`the first run was not interrupted during its copy (${ctx.interrupted.signal ?? ctx.interrupted.code})`);
      if (creations.length !== 1) problems.push(`the second run did not resume: the shadow was created ${creations.length} times`);
      resumed = `; resumed after SIGKILL, the second run copied ${String(run.result?.rowsCopied ?? '?')} rows`;
    }
    if (problems.length) return outcome('failed', problems.join('; '));
    const retries = run.warnings.filter((w) => /attempt \d+ failed/.test(w)).length;
    const postponed = run.phases.includes('postponed') ? '; cut-over postponed' : '';
    const idleEvent =
      writes === 0 && /create\s+event/i.test(c.createSql) ? " (the case's EVENT wrote nothing: it fails or is disabled on this server, see its error log)" : '';
    return outcome(
      'passed',
      `${rowsA} rows equal at the cut-over point; ${writes} row events on the original while shadowcut ran${idleEvent}${resumed}` +
        postponed +
        (retries ? `; ${retries} lock retries` : ''),
    );
  }

  /** ORDER BY: the case's order_by, else the original's primary key when the migrated table has those columns. */
  private async orderBy(c: CaseDef, table: string, ghost: string): Promise<string> {
    if (c.orderBy) return `order by ${c.orderBy}`;
    const pk = await rows(
      this.replica,
      `SELECT COLUMN_NAME c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
      [DB, table],
    );
    if (pk.length === 0) return '';
    const ghostCols = new Set(
      (await rows(this.replica, 'SELECT COLUMN_NAME c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [DB, ghost])).map((r) =>
        String(r.c).toLowerCase(),
      ),
    );
    const cols = pk.map((r) => String(r.c));
    return cols.every((x) => ghostCols.has(x.toLowerCase())) ? `order by ${cols.map(q).join(', ')}` : '';
  }

  /** The migrated table's definition must be what ALTER TABLE itself would have produced. */
  private async nativeSchemaCheck(table: string, old: string, alter: string, before: string | null): Promise<string | null> {
    const ref = '_corpus_native_ref';
    // LIKE copies no foreign key, and the kept original has none left (they moved to the new table):
    // a table with keys is made again from its definition before the run, the keys renamed (their
    // names are unique per database) and named back before comparing.
    const keys = before !== null && / FOREIGN KEY /.test(before);
    const suffix = '_corpus_ref';
    try {
      if (keys) {
        const sql = before
          .replace(/^CREATE TABLE `[^`]+`/, `CREATE TABLE ${q(DB)}.${q(ref)}`)
          .replace(/CONSTRAINT `((?:[^`]|``)+)` FOREIGN KEY/g, (_m, name: string) => `CONSTRAINT \`${name}${suffix}\` FOREIGN KEY`);
        await this.primary.query(sql);
      } else {
        await this.primary.query(`CREATE TABLE ${q(DB)}.${q(ref)} LIKE ${q(DB)}.${q(old)}`);
      }
      try {
        await this.primary.query(`ALTER TABLE ${q(DB)}.${q(ref)} ${alter}`);
      } catch (error) {
        this.note(`native reference ALTER not possible (${(error as Error).message}); schema check skipped`);
        return null;
      }
      const want = this.normalise(((await this.showCreate(this.primary, ref)) ?? '').replaceAll(`${suffix}\``, '`'));
      const got = this.normalise(await this.showCreate(this.primary, table));
      if (want === got) return null;
      this.note(`schema differs from a native ALTER:\n--- native\n${want}\n--- shadowcut\n${got}`);
      return `schema differs from a native ALTER: ${lineDiff(want, got)}`;
    } finally {
      await this.primary.query(`DROP TABLE IF EXISTS ${q(DB)}.${q(ref)}`).catch(() => {});
    }
  }
}

function normalise(s: string): string {
  return s.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** `RENAME TABLE t TO old, ghost TO t` (names possibly qualified and quoted): the helper names, or null. */
function renames(info: string, table: string): { old: string; ghost: string } | null {
  const sql = info.replace(/^use `[^`]*`;\s*/i, '');
  const m = sql.match(/^RENAME\s+TABLES?\s+(.*)$/is);
  if (!m) return null;
  const name = (s: string) => s.trim().split('.').pop()!.replace(/^`|`$/g, '');
  const pairs = m[1].split(',').map((p) => p.split(/\s+TO\s+/i).map(name));
  const out = pairs.find((p) => p[0] === table);
  const into = pairs.find((p) => p[1] === table);
  return out && into ? { old: out[1], ghost: into[0] } : null;
}

/** Row events on the original from the creation of the shadow to the cut-over: writes shadowcut had to follow. */
function rowEventsDuringRun(events: BinlogEvent[], database: string, table: string, ghost: string): number {
  const from = events.findIndex((e) => e.type === 'Query' && e.info.includes(`\`${ghost}\``));
  if (from < 0) return 0;
  const mapped = `(${database}.${table})`;
  let n = 0;
  let current = false;
  for (const e of events.slice(from)) {
    if (e.type === 'Table_map') current = e.info.endsWith(mapped);
    else if (/_rows/i.test(e.type) && current) n++;
  }
  return n;
}

function firstDifference(a: Buffer, b: Buffer): string {
  const la = a.toString('utf8').split('\n');
  const lb = b.toString('utf8').split('\n');
  const onlyA = la.filter((l) => !lb.includes(l));
  const onlyB = lb.filter((l) => !la.includes(l));
  const clip = (s: string | undefined) => (s === undefined ? '-' : JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}...` : s));
  return (
    `original ${la.length - 1} rows, migrated ${lb.length - 1} rows; ${onlyA.length} original rows have no equal migrated row ` +
    `(first ${clip(onlyA[0])}), ${onlyB.length} migrated rows have no equal original row (first ${clip(onlyB[0])})`
  );
}

function lineDiff(a: string, b: string): string {
  const la = a.split('\n').map((l) => l.trim());
  const lb = b.split('\n').map((l) => l.trim());
  const gone = la.filter((l) => !lb.includes(l));
  const added = lb.filter((l) => !la.includes(l));
  return `native has ${JSON.stringify(gone)}, shadowcut's has ${JSON.stringify(added)}`;
}

async function servers(): Promise<{ primary: string; replica: string; stop: (() => void) | null }> {
  if (env.SHADOWCUT_MYSQL_URL) {
    if (!env.SHADOWCUT_MYSQL_REPLICA_URL) {
      throw new Error('SHADOWCUT_MYSQL_URL is set but SHADOWCUT_MYSQL_REPLICA_URL is not: the comparison runs on a replica of that primary');
    }
    return { primary: env.SHADOWCUT_MYSQL_URL, replica: env.SHADOWCUT_MYSQL_REPLICA_URL, stop: null };
  }
  const dir = resolve(REPO, env.SHADOWCUT_CORPUS_SERVERS_DIR ?? 'test/corpus/.servers');
  const script = join(REPO, 'scripts/servers.sh');
  const run = (cmd: string) =>
    spawnSync('bash', [script, cmd], { env: { ...env, SHADOWCUT_SERVERS_DIR: dir }, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  const up = run('up');
  if (up.status !== 0) throw new Error(`scripts/servers.sh up failed (exit ${up.status})`);
  const info = JSON.parse(readFileSync(join(dir, 'servers.json'), 'utf8')) as { mysqlUrl: string; mysqlReplicaUrl: string };
  const keep = env.SHADOWCUT_CORPUS_KEEP_SERVERS === '1';
  return { primary: info.mysqlUrl, replica: info.mysqlReplicaUrl, stop: keep ? null : () => void run('down') };
}

async function main(): Promise<number> {
  const filter = process.argv[2] ?? env.SHADOWCUT_CORPUS_FILTER ?? null;
  if (!existsSync(CORPUS)) throw new Error(`corpus not found at ${CORPUS} (set SHADOWCUT_GHOST_CORPUS)`);
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: build first (npx tsc -p tsconfig.json)`);
  const names = listCases(CORPUS).filter((n) => !filter || new RegExp(filter).test(n));
  if (names.length === 0) throw new Error(`no case matches ${filter}`);
  mkdirSync(RESULTS, { recursive: true });
  // The doc gets the table of a whole-corpus run only, unless asked (SHADOWCUT_CORPUS_WRITE_DOC=1).
  const writeDoc = env.SHADOWCUT_CORPUS_WRITE_DOC === '1' || (!filter && env.SHADOWCUT_CORPUS_WRITE_DOC !== '0');

  const srv = await servers();
  const harness = new Harness(srv.primary, srv.replica);
  const results: CaseResult[] = [];
  const info: RunInfo = { server: '', startedAt: new Date().toISOString(), finishedAt: null, total: names.length, filter };
  const publish = () => {
    const section = resultsSection(results, info);
    writeFileSync(join(RESULTS, 'results.md'), section + '\n');
    writeFileSync(join(RESULTS, 'results.json'), JSON.stringify({ ...info, results }, null, 2) + '\n');
    if (writeDoc) updateDoc(DOC, resultsSection(results, info, true));
  };
  try {
    await harness.open();
    info.server = harness.server;
    console.log(`gh-ost corpus: ${names.length} case(s) from ${CORPUS} on ${harness.server}`);
    for (const name of names) {
      const r = await harness.run(readCase(CORPUS, name));
      results.push(r);
      console.log(`${LABEL[r.status].padEnd(19)} ${name.padEnd(62)} ${r.seconds.toFixed(1).padStart(5)} s  ${r.detail}`);
      publish();
    }
    info.finishedAt = new Date().toISOString();
    publish();
  } finally {
    await harness.close().catch(() => {});
    srv.stop?.();
  }
  console.log(closingLine(results));
  return results.some((r) => r.status === 'failed') ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`corpus runner: ${(error as Error).message}`);
    process.exit(2);
  },
);
