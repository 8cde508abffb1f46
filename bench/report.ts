// Turns the measurements into one table per engine, the issue's targets as pass/fail lines, and
// bench/results/<timestamp>.json + .md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BYTES_LABELS, mib, relaxedMark, sittingLines, type BytesWritten, type Sitting } from './durability.js';
import { repoRoot } from './exec.js';
import type { LoadStats } from './load.js';
import type { TableState } from './seed.js';
import { captureToolName, type Engine } from './tools.js';

export type Mode = 'idle' | 'load';

/** MariaDB's binlog_alter_two_phase for a run: OFF ('default', MariaDB's own default) or ON; '' where not set. */
export type Setting = '' | 'default' | 'two-phase';

export interface RunResult {
  tool: string;
  setting: Setting;
  mode: Mode;
  /** With --repeat, every tool runs once per round, rounds one after another, so noise hits all alike. */
  round: number;
  workload: string;
  rows: number;
  /** False for pg_repack: the table is rewritten, not altered. */
  alters: boolean;
  ok: boolean;
  error?: string;
  wallS: number;
  rowsPerS: number;
  seedS: number;
  /** os.loadavg() as the run started: how busy the (shared) machine was. */
  loadavg: string;
  /** Write latency of the application while the tool ran (load mode only). */
  load?: LoadStats;
  /** What the primary wrote while the tool ran (its redo and binlog, or its WAL), the load's writes included. */
  bytes?: BytesWritten;
  /** The result table afterwards: new schema? how many rows? */
  after?: TableState;
  details: Record<string, unknown>;
}

export interface TableInfo {
  workload: string;
  table: string;
  rows: number;
  columns: number;
  alter: string;
}

export interface EngineReport {
  engine: Engine;
  server: string;
  /** Whether a replica/standby was attached and waited for. */
  replica: boolean;
  /** What the server is part of (a Galera cluster), and where the load writes. */
  cluster?: string;
  /** The idle and the load table (the load mode and baseline use the second). */
  tables: Record<Mode, TableInfo>;
  settings: Setting[];
  /** The tool whose wall time the ratio column divides by. */
  reference: string;
  /** The online tools shadowcut's p99 under load is held against. */
  peers: string[];
  tools: Array<{ name: string; describe: string }>;
  baseline?: LoadStats;
  /** What the primary wrote during the baseline: the load's own share of a loaded run's bytes. */
  baselineBytes?: BytesWritten;
  runs: RunResult[];
  skipped?: string;
}

export interface Target {
  text: string;
  pass: boolean | null;
  measured: string;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  command: string;
  options: Record<string, unknown>;
  machine: Record<string, unknown>;
  /** The servers' durability as read from them, and the disk's figures, before the runs (absent in results from before them). */
  sitting?: Sitting;
  engines: EngineReport[];
  targets: Record<string, Target[]>;
}

const TITLES: Record<Engine, string> = { mysql: 'MariaDB', postgres: 'PostgreSQL' };
export const SETTING_LABELS: Record<Setting, string> = {
  '': 'server as configured',
  default: 'binlog_alter_two_phase=OFF (default)',
  'two-phase': 'binlog_alter_two_phase=ON',
};

const f1 = (n: number) => n.toFixed(1);
const fms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

export function runsOf(e: EngineReport, tool: string, setting: Setting, mode: Mode): RunResult[] {
  return e.runs.filter((r) => r.tool === tool && r.setting === setting && r.mode === mode);
}

/** The median over runs by `value`; undefined if there are none or any failed. */
export function median(runs: RunResult[], value: (r: RunResult) => number): number | undefined {
  if (runs.length === 0 || runs.some((r) => !r.ok)) return undefined;
  const sorted = runs.map(value).sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const roundsOf = (e: EngineReport) => Math.max(1, ...e.runs.map((r) => r.round));

function notes(r: RunResult): string {
  const out: string[] = [];
  if (!r.ok) out.push(`FAILED: ${(r.error ?? '').split('\n')[0].slice(0, 120)}`);
  if (r.ok && r.after && r.alters && !r.after.altered) out.push('result table NOT altered');
  if (!r.alters) out.push('rewrite only, no ALTER');
  if (r.ok && r.after && r.mode === 'idle' && r.after.rows !== r.rows) out.push(`rows after: ${r.after.rows}`);
  // A run told to use one change source that used the other (or whose source could not be seen) measured something else.
  const { captureAsked: asked, capturedBy: used } = r.details as { captureAsked?: string; capturedBy?: string };
  if (asked && used !== asked) out.push(`ran with ${used ?? 'no copy'}, not ${asked}: not a ${asked} figure`);
  if (typeof r.details.cutoverLockedMs === 'number') out.push(`cut-over locked ${r.details.cutoverLockedMs} ms`);
  if (typeof r.details.clientCpuS === 'number') out.push(`tool CPU ${r.details.clientCpuS.toFixed(1)} s`);
  const reads = r.details.logReads as { reads: number; longestMs: number; msPerReadByPart: number[] } | undefined;
  if (reads) out.push(`log reads ${reads.reads}, ms each by tenth of the run ${reads.msPerReadByPart.join('/')}, longest ${reads.longestMs}`);
  if (r.load && r.load.errors > 0)
    out.push(
      Object.entries(r.load.errorCodes)
        .map(([k, v]) => `${k} x${v}`)
        .join(', '),
    );
  return out.join('; ');
}

/** How far `shadowcut plan` may be from the run's wall time: a DBA books an off-peak window from it. */
const PLAN_TOLERANCE = 0.25;

/** The plan's total for a run (ms), when the bench asked for one and got it. */
function planSaidMs(r: RunResult): number | undefined {
  const estimate = r.details.planEstimate as { totalMs?: number } | undefined;
  return typeof estimate?.totalMs === 'number' ? estimate.totalMs : undefined;
}

/** "plan said X s, took Y s (ratio)" for each shadowcut run that has a plan. */
export function planLines(e: EngineReport): string[] {
  return e.runs.flatMap((r) => {
    const said = planSaidMs(r);
    if (said === undefined && r.details.planEstimate === undefined) return [];
    const what = `${r.tool}${r.setting ? ` ${r.setting}` : ''} ${r.mode} #${r.round}`;
    if (said === undefined) return [`- ${what}: no plan (${String((r.details.planEstimate as { error?: string }).error)})`];
    const took = r.ok ? `took ${f1(r.wallS)} s (${(r.wallS / (said / 1000)).toFixed(2)}x)` : 'the run failed';
    return [`- ${what}: plan said ${f1(said / 1000)} s, ${took}`];
  });
}

/**
 * The plan's duration within PLAN_TOLERANCE of the wall time, for every shadowcut run (under load the
 * plan was asked under the same load). Per run, not medians: each plan is one promise.
 */
function planTarget(e: EngineReport): Target | null {
  const planned = e.runs.filter((r) => r.details.planEstimate !== undefined);
  if (planned.length === 0) return null;
  const off = planned.map((r) => {
    const said = planSaidMs(r);
    return r.ok && said !== undefined ? Math.abs(r.wallS / (said / 1000) - 1) : Infinity;
  });
  const worst = Math.max(...off);
  return {
    text: `plan's duration within ${PLAN_TOLERANCE * 100}% of the run's wall time, every run, idle and under load`,
    pass: worst <= PLAN_TOLERANCE,
    measured: Number.isFinite(worst) ? `worst ${(worst * 100).toFixed(0)}% off over ${planned.length} run(s)` : 'a run failed or had no plan',
  };
}

/** The kinds of bytes the engine's runs have (MariaDB: redo, binlog; PostgreSQL: WAL), in the table's order. */
export function bytesKinds(e: EngineReport): Array<keyof BytesWritten> {
  return (Object.keys(BYTES_LABELS) as Array<keyof BytesWritten>).filter((k) => e.runs.some((r) => r.bytes?.[k] !== undefined));
}

/** The floor's run beside `r` (same setting, mode and round): what the bytes are held against. */
export const floorOf = (e: EngineReport, r: RunResult) => runsOf(e, 'floor', r.setting, r.mode).find((x) => x.round === r.round && x.ok);

/** "12.3 (1.42x)": MiB written, and the ratio to the floor's where there is one. */
export function bytesCell(v: number | undefined, floor: number | undefined): string {
  if (v === undefined) return '-';
  return floor ? `${mib(v)} (${(v / floor).toFixed(2)}x)` : mib(v);
}

/** A pipe table: aligned for the terminal, valid Markdown for the .md file. */
export function formatTable(e: EngineReport): string {
  const rounds = roundsOf(e);
  const withSetting = e.settings.some((s) => s !== '');
  const kinds = bytesKinds(e);
  const header = [
    'tool',
    ...(withSetting ? ['setting'] : []),
    'mode',
    'table',
    'wall s',
    'rows/s',
    `x ${e.reference}`,
    'p50 ms',
    'p99 ms',
    'max ms',
    'writes',
    'write errors',
    'peak RSS MiB',
    ...kinds.map((k) => `${BYTES_LABELS[k]} MiB (x floor)`),
    'notes',
  ];
  const firstNumeric = header.indexOf('wall s');
  const isNumeric = (i: number) => i >= firstNumeric && i < header.length - 1;
  const rows: string[][] = [];
  const lat = (l: LoadStats | undefined) => (l ? [fms(l.p50Ms), fms(l.p99Ms), fms(l.maxMs), String(l.ops), String(l.errors)] : ['-', '-', '-', '-', '-']);
  const loadTable = `${e.tables.load.workload} ${e.tables.load.rows}`;
  if (e.baseline)
    rows.push([
      '(no migration)',
      ...(withSetting ? ['-'] : []),
      'load',
      loadTable,
      f1(e.baseline.seconds),
      '-',
      '-',
      ...lat(e.baseline),
      '-',
      ...kinds.map((k) => bytesCell(e.baselineBytes?.[k], undefined)),
      'baseline',
    ]);
  for (const r of e.runs) {
    const ref = runsOf(e, e.reference, r.setting, r.mode).find((x) => x.round === r.round);
    const rss = r.details.peakRssMiB;
    rows.push([
      r.tool,
      ...(withSetting ? [r.setting || '-'] : []),
      rounds > 1 ? `${r.mode} #${r.round}` : r.mode,
      `${r.workload} ${r.rows}`,
      r.ok ? f1(r.wallS) : `(${f1(r.wallS)})`,
      r.ok ? String(Math.round(r.rowsPerS)) : '-',
      r.ok && ref?.ok ? (r.wallS / ref.wallS).toFixed(2) : '-',
      ...lat(r.load),
      typeof rss === 'number' ? rss.toFixed(0) : '-',
      ...kinds.map((k) => bytesCell(r.bytes?.[k], r.tool === 'floor' ? undefined : floorOf(e, r)?.bytes?.[k])),
      notes(r),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (isNumeric(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ') + ' |';
  const rule = '|' + widths.map((w, i) => (isNumeric(i) ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|';
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** shadowcut's median wall time in a group against the reference's, as a target line. */
function wallTarget(e: EngineReport, setting: Setting, mode: Mode, limit: number, text: string): Target {
  const mine = median(runsOf(e, 'shadowcut', setting, mode), (r) => r.wallS);
  const ref = median(runsOf(e, e.reference, setting, mode), (r) => r.wallS);
  return {
    text,
    pass: mine !== undefined && ref !== undefined ? mine <= limit * ref : mine === undefined ? false : null,
    measured:
      mine !== undefined && ref !== undefined
        ? `${f1(mine)} s vs ${f1(ref)} s = ${(mine / ref).toFixed(2)}x`
        : mine === undefined
          ? 'a shadowcut run failed'
          : `${e.reference} not measured`,
  };
}

/**
 * The issue's targets, judged on medians, per setting: idle wall time against the peer (MariaDB
 * 0.8x pt-osc with binlog_alter_two_phase OFF, 0.7x with it ON; PostgreSQL 1.3x pg_repack), and
 * under load wall time <= 1.0x the peer, the writers' longest wait <= 150 ms, their p99 <= 2x the
 * baseline's, and 99% of the offered writes served.
 */
export function targetsFor(e: EngineReport): Target[] {
  const rounds = roundsOf(e);
  const of = rounds > 1 ? ` (medians of ${rounds} rounds)` : '';
  const out: Target[] = [];
  for (const setting of e.settings) {
    const pre = setting ? `${SETTING_LABELS[setting]}: ` : '';
    const idle = runsOf(e, 'shadowcut', setting, 'idle');
    if (idle.length > 0) {
      const limit = e.engine === 'postgres' ? 1.3 : setting === 'two-phase' ? 0.7 : 0.8;
      const t = wallTarget(e, setting, 'idle', limit, `${pre}idle wall time <= ${limit}x ${e.reference}, verification included${of}`);
      // Verification is part of the figure: a run that reports no checksum round does not count.
      const unverified = idle.filter((r) => r.ok && !(Number(r.details.checksumRounds) >= 1)).length;
      if (unverified > 0) out.push({ ...t, pass: false, measured: `${t.measured}; ${unverified} run(s) reported no checksum round` });
      else out.push(t);
    }
    const loaded = runsOf(e, 'shadowcut', setting, 'load');
    if (loaded.length === 0) continue;
    const table = `${e.tables.load.rows}-row ${e.tables.load.columns}-column ${e.tables.load.workload}`;
    out.push(wallTarget(e, setting, 'load', 1.0, `${pre}under load (${table}), wall time <= 1.0x ${e.reference}${of}`));
    const maxMs = median(loaded, (r) => r.load?.maxMs ?? Infinity);
    const worst = Math.max(...loaded.map((r) => r.load?.maxMs ?? Infinity));
    out.push({
      text: `${pre}under load, the writers' longest wait <= 150 ms${of}`,
      pass: maxMs !== undefined ? maxMs <= 150 : false,
      measured: maxMs !== undefined ? `${fms(maxMs)} ms${rounds > 1 ? ` (worst round ${fms(worst)} ms)` : ''}` : 'a shadowcut run failed',
    });
    const p99 = median(loaded, (r) => r.load?.p99Ms ?? Infinity);
    const base = e.baseline?.p99Ms;
    out.push({
      text: `${pre}under load, the writers' p99 <= 2x the no-migration baseline's${of}`,
      pass: p99 === undefined ? false : base === undefined ? null : p99 <= 2 * base,
      measured:
        p99 === undefined
          ? 'a shadowcut run failed'
          : base === undefined
            ? `${fms(p99)} ms; no baseline measured`
            : `${fms(p99)} ms vs baseline ${fms(base)} ms`,
    });
    const served = median(loaded, (r) => (r.load && r.load.offered > 0 ? (r.load.ops - r.load.errors) / r.load.offered : 0));
    out.push({
      text: `${pre}under load, at least 99% of the offered writes served${of}`,
      pass: served !== undefined && served >= 0.99,
      measured: served !== undefined ? `${(served * 100).toFixed(1)}%` : 'a shadowcut run failed',
    });
  }
  const plan = planTarget(e);
  if (plan) out.push(plan);
  return out;
}

/** Where shadowcut's worst writes under load fell (first round, first setting), by the phase it was in. */
function slowestWithPhase(e: EngineReport): string | undefined {
  const r = runsOf(e, 'shadowcut', e.settings[0] ?? '', 'load').find((x) => x.round === 1);
  const phases = (r?.details.phases ?? []) as Array<{ phase: string; atS: number }>;
  if (!r?.load || r.load.slowest.length === 0) return undefined;
  const phaseAt = (t: number) => [...phases].reverse().find((p) => p.atS <= t)?.phase ?? 'start';
  const worst = r.load.slowest.slice(0, 5).map((s) => `${fms(s.ms)} ms ${s.op} at ${f1(s.atS)} s (${phaseAt(s.atS)})${s.error ? ' error' : ''}`);
  const timeline = phases.map((p) => `${p.phase} ${f1(p.atS)} s`).join(', ');
  return `Slowest writes during shadowcut under load${r.setting ? ` (${r.setting})` : ''}: ${worst.join('; ')}. Phases began at: ${timeline}.`;
}

/**
 * `--capture-cost`: the medians of the same load during the same migration with the change stream
 * and with triggers, side by side; empty when those rows were not run. A run that did not use the
 * source it was told to (PostgreSQL before its trigger capture existed ignored --capture) is left out.
 */
export function captureCost(e: EngineReport): string[] {
  const lines: string[] = [];
  for (const setting of e.settings) {
    const [stream, trigger] = (['stream', 'trigger'] as const).map((c) =>
      runsOf(e, captureToolName(c), setting, 'load').filter((r) => r.details.capturedBy === c),
    );
    if (!stream.length && !trigger.length) continue;
    const cell = (runs: RunResult[], value: (r: RunResult) => number, unit: string) => {
      const m = median(runs, value);
      if (m === undefined) return '-';
      return unit === 's' ? `${f1(m)} s` : unit === 'ms' ? `${fms(m)} ms` : String(Math.round(m));
    };
    const row = (label: string, value: (r: RunResult) => number, unit: string) => {
      const [a, b] = [median(stream, value), median(trigger, value)];
      const ratio = a !== undefined && b !== undefined && a > 0 ? `${(b / a).toFixed(2)}x` : '-';
      return `| ${label} | ${cell(stream, value, unit)} | ${cell(trigger, value, unit)} | ${ratio} |`;
    };
    lines.push(
      '',
      `Trigger capture's cost to the writes${setting ? ` (${setting})` : ''}: medians of ${stream.length} stream and ${trigger.length} trigger run(s), the same load during the same migration:`,
      '',
      '| | --capture stream | --capture trigger | trigger / stream |',
      '|---|---:|---:|---:|',
      row('write p50', (r) => r.load?.p50Ms ?? NaN, 'ms'),
      row('write p99', (r) => r.load?.p99Ms ?? NaN, 'ms'),
      row('write max', (r) => r.load?.maxMs ?? NaN, 'ms'),
      row('writes done', (r) => r.load?.ops ?? NaN, ''),
      row('wall time', (r) => r.wallS, 's'),
    );
  }
  if (lines.length && e.baseline)
    lines.push('', `No migration (baseline): p50 ${fms(e.baseline.p50Ms)} ms, p99 ${fms(e.baseline.p99Ms)} ms, max ${fms(e.baseline.maxMs)} ms.`);
  return lines;
}

export function formatEngine(e: EngineReport, targets: Target[]): string {
  const title = `${TITLES[e.engine]} (${e.server})${e.replica ? `, ${e.engine === 'mysql' ? 'replica' : 'standby'} attached` : ''}${e.cluster ? `, ${e.cluster}` : ''}`;
  if (e.skipped) return `## ${title}\n\nskipped: ${e.skipped}\n`;
  const tables = (['idle', 'load'] as Mode[])
    .filter((m) => e.runs.some((r) => r.mode === m))
    .map((m) => `${m}: ${e.tables[m].table}, ${e.tables[m].rows} rows, ${e.tables[m].columns} columns, ALTER \`${e.tables[m].alter}\``);
  const parts = [`## ${title}`, '', ...tables.map((t) => `- ${t}`), ''];
  if (e.settings.some((s) => s)) parts.push(`Settings: ${e.settings.map((s) => `\`${s}\` = ${SETTING_LABELS[s]}`).join('; ')}.`, '');
  parts.push(formatTable(e), '');
  parts.push(
    `x ${e.reference} = wall time / ${e.reference}'s wall time in the same ${e.settings.some((s) => s) ? 'setting, ' : ''}mode and round. ` +
      `Latencies are the application's single-row writes while the tool ran. peak RSS: the tool process's VmHWM.` +
      (bytesKinds(e).length
        ? ` ${bytesKinds(e)
            .map((k) => BYTES_LABELS[k])
            .join(
              ', ',
            )} MiB: what the primary wrote while the tool ran (the load's writes included), x floor = against the floor's in the same ${e.settings.some((s) => s) ? 'setting, ' : ''}mode and round.`
        : ''),
    '',
  );
  if (targets.length) parts.push('Targets (shadowcut):', '');
  for (const t of targets) parts.push(`- ${t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'FAIL'} ${t.text}: ${t.measured}`);
  const plans = e.settings.flatMap((s) => {
    const plan = e.runs.find((r) => r.tool === 'shadowcut' && r.setting === s && Array.isArray(r.details.plan))?.details.plan as string[] | undefined;
    return plan?.length ? [`- ${s ? `${s}: ` : ''}${plan.join('; ')}`] : [];
  });
  if (plans.length) parts.push('', "shadowcut's plan (its dry run before each run):", '', ...plans);
  const estimates = planLines(e);
  if (estimates.length) parts.push('', '`shadowcut plan --force-copy` before each run, against the run:', '', ...estimates);
  parts.push(...captureCost(e));
  const slow = slowestWithPhase(e);
  if (slow) parts.push('', slow);
  parts.push('', 'Tools:', '');
  for (const t of e.tools) parts.push(`- ${t.name}: \`${t.describe}\``);
  return parts.join('\n') + '\n';
}

export function formatReport(r: BenchReport): string {
  const head = [
    `# shadowcut bench ${r.startedAt}${relaxedMark(r.sitting?.asked)}`,
    '',
    `command: \`${r.command}\``,
    `machine: ${Object.entries(r.machine)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(', ')}`,
    `load: ${String(r.options.loadConnections)} connections, ${String(r.options.loadRate)} writes/s in all (40% INSERT, 40% UPDATE by random id, 20% DELETE by random id)`,
  ];
  const extra = (r.options.shadowcutArgs as string[] | undefined) ?? [];
  if (extra.length) head.push(`shadowcut extra arguments: \`${extra.join(' ')}\``);
  head.push('');
  if (r.sitting) head.push(...sittingLines(r.sitting), '');
  return head.join('\n') + '\n' + r.engines.map((e) => formatEngine(e, r.targets[e.engine] ?? [])).join('\n');
}

export function writeReport(r: BenchReport): { json: string; md: string } {
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = r.startedAt.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
  const json = join(dir, `${stamp}.json`);
  const md = join(dir, `${stamp}.md`);
  writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(md, formatReport(r));
  return { json, md };
}
