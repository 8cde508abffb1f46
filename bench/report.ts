// Turns the measurements into one table per engine, the issue's targets as pass/fail lines, and
// bench/results/<timestamp>.json + .md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './exec.js';
import type { LoadStats } from './load.js';
import type { TableState } from './seed.js';
import type { Engine } from './tools.js';

export type Mode = 'idle' | 'load';

export interface RunResult {
  tool: string;
  mode: Mode;
  /** With --repeat, every tool runs once per round, rounds one after another, so noise hits all alike. */
  round: number;
  ok: boolean;
  error?: string;
  wallS: number;
  rowsPerS: number;
  seedS: number;
  /** os.loadavg() as the run started: how busy the (shared) machine was. */
  loadavg: string;
  /** Write latency of the application while the tool ran (load mode only). */
  load?: LoadStats;
  /** The result table afterwards: new schema? how many rows? */
  after?: TableState;
  details: Record<string, unknown>;
}

export interface EngineReport {
  engine: Engine;
  server: string;
  rows: number;
  /** The tool whose wall time the ratio column divides by. */
  reference: string;
  tools: Array<{ name: string; describe: string }>;
  baseline?: LoadStats;
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
  engines: EngineReport[];
  targets: Record<string, Target[]>;
}

const TITLES: Record<Engine, string> = { mysql: 'MariaDB', postgres: 'PostgreSQL' };

const f1 = (n: number) => n.toFixed(1);
const fms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

function find(e: EngineReport, tool: string, mode: Mode, round: number): RunResult | undefined {
  return e.runs.find((r) => r.tool === tool && r.mode === mode && r.round === round);
}

/** The median of a tool's successful runs in a mode, by `value`; undefined if any run failed. */
function median(e: EngineReport, tool: string, mode: Mode, value: (r: RunResult) => number): number | undefined {
  const runs = e.runs.filter((r) => r.tool === tool && r.mode === mode);
  if (runs.length === 0 || runs.some((r) => !r.ok)) return undefined;
  const sorted = runs.map(value).sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const roundsOf = (e: EngineReport) => Math.max(1, ...e.runs.map((r) => r.round));

function notes(r: RunResult, rows: number): string {
  const out: string[] = [];
  if (!r.ok) out.push(`FAILED: ${(r.error ?? '').split('\n')[0].slice(0, 120)}`);
  if (r.ok && r.after && !r.after.altered) out.push('result table NOT altered');
  if (r.ok && r.after && r.mode === 'idle' && r.after.rows !== rows) out.push(`rows after: ${r.after.rows}`);
  if (typeof r.details.cutoverLockedMs === 'number') out.push(`cut-over locked ${r.details.cutoverLockedMs} ms`);
  if (typeof r.details.clientCpuS === 'number') out.push(`tool CPU ${r.details.clientCpuS.toFixed(1)} s`);
  if (r.load && r.load.errors > 0) out.push(Object.entries(r.load.errorCodes).map(([k, v]) => `${k} x${v}`).join(', '));
  return out.join('; ');
}

/** A pipe table: aligned for the terminal, valid Markdown for the .md file. */
export function formatTable(e: EngineReport): string {
  const rounds = roundsOf(e);
  const header = ['tool', 'mode', 'wall s', 'rows/s', `x ${e.reference}`, 'p50 ms', 'p99 ms', 'max ms', 'writes', 'write errors', 'notes'];
  const rows: string[][] = [];
  if (e.baseline) {
    const b = e.baseline;
    rows.push(['(no migration)', 'load', f1(b.seconds), '-', '-', fms(b.p50Ms), fms(b.p99Ms), fms(b.maxMs), String(b.ops), String(b.errors), 'baseline']);
  }
  for (const r of e.runs) {
    const ref = find(e, e.reference, r.mode, r.round);
    const ratio = r.ok && ref?.ok ? (r.wallS / ref.wallS).toFixed(2) : '-';
    const l = r.load;
    rows.push([
      r.tool,
      rounds > 1 ? `${r.mode} #${r.round}` : r.mode,
      r.ok ? f1(r.wallS) : `(${f1(r.wallS)})`,
      r.ok ? String(Math.round(r.rowsPerS)) : '-',
      ratio,
      l ? fms(l.p50Ms) : '-',
      l ? fms(l.p99Ms) : '-',
      l ? fms(l.maxMs) : '-',
      l ? String(l.ops) : '-',
      l ? String(l.errors) : '-',
      notes(r, e.rows),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (i >= 2 && i <= 9 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ') + ' |';
  const rule = '|' + widths.map((w, i) => (i >= 2 && i <= 9 ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|';
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export function targetsFor(e: EngineReport): Target[] {
  const has = (mode: Mode) => e.runs.some((r) => r.tool === 'shadowcut' && r.mode === mode);
  const rounds = roundsOf(e);
  const of = rounds > 1 ? ` (median of ${rounds} rounds)` : '';
  const out: Target[] = [];
  const wallLimit = e.engine === 'mysql' ? 0.9 : 2;
  if (has('idle')) {
    const mine = median(e, 'shadowcut', 'idle', (r) => r.wallS);
    const ref = median(e, e.reference, 'idle', (r) => r.wallS);
    out.push({
      text: `idle wall time <= ${wallLimit}x ${e.reference}${of}`,
      pass: mine !== undefined && ref !== undefined ? mine <= wallLimit * ref : mine === undefined ? false : null,
      measured: mine !== undefined && ref !== undefined ? `${f1(mine)} s vs ${f1(ref)} s = ${(mine / ref).toFixed(2)}x` : 'not measured (a run failed or was not selected)',
    });
  }
  if (has('load')) {
    const loaded = e.runs.filter((r) => r.tool === 'shadowcut' && r.mode === 'load');
    const ok = loaded.every((r) => r.ok && r.load);
    const maxMs = median(e, 'shadowcut', 'load', (r) => r.load?.maxMs ?? Infinity);
    const worst = Math.max(...loaded.map((r) => r.load?.maxMs ?? Infinity));
    out.push({
      text: `under load, longest write stall (max write latency) <= 200 ms${of}`,
      pass: ok && maxMs !== undefined ? maxMs <= 200 : false,
      measured: maxMs !== undefined ? `${fms(maxMs)} ms${rounds > 1 ? ` (worst round ${fms(worst)} ms)` : ''}` : 'a run failed',
    });
    if (e.engine === 'mysql') {
      const b = e.baseline;
      const p99 = median(e, 'shadowcut', 'load', (r) => r.load?.p99Ms ?? Infinity);
      out.push({
        text: `under load, p99 write latency <= 3x the p99 without a migration${of}`,
        pass: ok && p99 !== undefined && b ? p99 <= 3 * b.p99Ms : b ? false : null,
        measured: p99 !== undefined && b ? `${fms(p99)} ms vs ${fms(b.p99Ms)} ms = ${(p99 / b.p99Ms).toFixed(2)}x` : 'no baseline',
      });
    }
    const errors = loaded.reduce((n, r) => n + (r.load?.errors ?? 0), 0);
    const writes = loaded.reduce((n, r) => n + (r.load?.ops ?? 0), 0);
    out.push({
      text: 'under load, no write errors',
      pass: ok ? errors === 0 : false,
      measured: `${errors} errors in ${writes} writes${rounds > 1 ? ` over ${rounds} rounds` : ''}`,
    });
  }
  return out;
}

/** Where shadowcut's worst writes under load fell, by the phase it was in at the time. */
function slowestWithPhase(e: EngineReport): string | undefined {
  const r = find(e, 'shadowcut', 'load', 1);
  const phases = (r?.details.phases ?? []) as Array<{ phase: string; atS: number }>;
  if (!r?.load || r.load.slowest.length === 0) return undefined;
  const phaseAt = (t: number) => [...phases].reverse().find((p) => p.atS <= t)?.phase ?? 'start';
  const worst = r.load.slowest.slice(0, 5).map((s) => `${fms(s.ms)} ms ${s.op} at ${f1(s.atS)} s (${phaseAt(s.atS)})${s.error ? ' error' : ''}`);
  const timeline = phases.map((p) => `${p.phase} ${f1(p.atS)} s`).join(', ');
  return `Slowest writes during shadowcut under load: ${worst.join('; ')}. Phases began at: ${timeline}.`;
}

export function formatEngine(e: EngineReport, targets: Target[]): string {
  const title = `${TITLES[e.engine]} (${e.server}), ${e.rows} rows`;
  if (e.skipped) return `## ${title}\n\nskipped: ${e.skipped}\n`;
  const parts = [`## ${title}`, '', formatTable(e), ''];
  parts.push(`x ${e.reference} = wall time / ${e.reference}'s wall time in the same mode. Latencies are the application's single-row writes while the tool ran.`, '');
  parts.push('Targets (shadowcut):', '');
  for (const t of targets) parts.push(`- ${t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'FAIL'} ${t.text}: ${t.measured}`);
  const slow = slowestWithPhase(e);
  if (slow) parts.push('', slow);
  parts.push('', 'Tools:', '');
  for (const t of e.tools) parts.push(`- ${t.name}: \`${t.describe}\``);
  return parts.join('\n') + '\n';
}

export function formatReport(r: BenchReport): string {
  const head = [
    `# shadowcut bench ${r.startedAt}`,
    '',
    `command: \`${r.command}\``,
    `machine: ${Object.entries(r.machine).map(([k, v]) => `${k}=${String(v)}`).join(', ')}`,
    `load: ${String(r.options.loadConnections)} connections, ${String(r.options.loadRate)} writes/s in all (40% INSERT, 40% UPDATE by random id, 20% DELETE by random id)`,
  ];
  const extra = (r.options.shadowcutArgs as string[] | undefined) ?? [];
  if (extra.length) head.push(`shadowcut extra arguments: \`${extra.join(' ')}\``);
  head.push('');
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
