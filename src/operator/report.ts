import path from 'node:path';
import { markdownText, reportDir, writeNewFile } from '../core/report/report-files.js';
import { jsonText, shownLines } from '../core/report/shown-text.js';
import { redactUrlsIn } from '../core/engine/connect/secrets.js';
import type { OldSnapshotRecord, RunState } from '../core/run/run-state.js';
import type { MigrateResult } from '../core/run/config.js';
import type { Sample } from '../core/run/run-samples.js';
import { reportPage } from './report-page/page.js';
import { planPage } from './report-page/plan-page.js';
import type { PlanDetail } from '../core/plan/plan.js';

export type Outcome = 'success' | 'failure';

export interface ReportInput {
  state: RunState;
  /** What migrate() returned; a run that threw has none, and the figures only it holds are then null. */
  result?: Pick<MigrateResult, 'checksumRounds' | 'copyTimeProof' | 'resumed' | 'mappingProofs' | 'keysCompared' | 'keysComparedAtCutover'>;
}

/** The JSON report. Its field names are a contract with whatever parses it: add fields, never rename. */
export interface Report {
  version: 1;
  table: string;
  alter: string;
  engine: string;
  outcome: Outcome;
  error: string | null;
  resumed: boolean | null;
  startedAt: string;
  /** When the run ended, or for a failure, when the report was written. */
  endedAt: string;
  durationMs: number;
  /** The expand/contract runbook's milestones; null for those the run never reached. */
  milestones: { start: string | null; copyDone: string | null; verified: string | null; cutover: string | null; end: string | null };
  timeline: { event: string; at: string }[];
  rowsCopied: number;
  rowsEstimated: number;
  changesApplied: number;
  /** How changes were followed: the change stream or triggers (null: not a copy, or before the plan). */
  capture: 'stream' | 'trigger' | null;
  /** Null when no replica was watched. */
  maxLagSeenMs: number | null;
  throttledMs: number;
  /** Keyed by the kind of reason: replica, load, flag, outside (the window), paused. */
  throttledMsByReason: Record<string, number>;
  cutoverAttempts: number;
  cutoverLockedMs: number | null;
  checksumRounds: number | null;
  /** Set when parity rested on the copy-time chunk digests (`--checksum-while-copying`), not a whole-table checksum. */
  copyTimeProof: MigrateResult['copyTimeProof'];
  /** Sampled rows on which the server's own ALTER and the copy's mapping agreed, per proof. */
  mappingProofRows: number[] | null;
  /** Keys changed after the last checksum view, compared row by row; and of those, under the cut-over lock. */
  keysCompared: number | null;
  keysComparedAtCutover: number | null;
  /** Transactions holding a snapshot older than the cut-over: waited for until they ended, or cut over under (--old-snapshots). */
  oldSnapshots: OldSnapshotRecord[];
  /** The run over time (core/run/run-samples.ts), what report.html draws: each sample's `t` is ms from `from`. */
  series: { from: string; periodMs: number; maxLagMs: number; samples: Sample[] };
  /** Present for a backfill only, as `command: "backfill"` (its rowsCopied are the rows scanned). */
  command?: 'backfill';
  rowsUpdated?: number;
}

/** Writes `shadowcut-<table>-<start time>.md`, `.json` and `.html` into `dir` (created 0700 if missing), each 0600; returns their paths. */
export async function writeReport(
  dir: string,
  input: ReportInput,
  outcome: Outcome,
  error?: string,
): Promise<{ markdown: string; json: string; html: string }> {
  const report = buildReport(input, outcome, error ?? null, new Date());
  const stem = await freshStem(dir, `${report.table}-${report.startedAt.replace(/[-:]|\.\d+/g, '')}`, '.json', jsonText(report, 2) + '\n');
  const files = { markdown: `${stem}.md`, json: `${stem}.json`, html: `${stem}.html` };
  await writeNewFile(files.markdown, markdown(report));
  await writeNewFile(files.html, reportPage(report));
  return files;
}

/** `plan --report-dir`: `shadowcut-<table>-plan-<time>.html`, the estimate drawn; returns its path. */
export async function writePlanPage(dir: string, detail: PlanDetail, summary: string[], now = new Date()): Promise<string> {
  const stem = await freshStem(dir, `${detail.table}-plan-${now.toISOString().replace(/[-:]|\.\d+/g, '')}`, '.html', planPage(detail, summary, now));
  return `${stem}.html`;
}

/**
 * Writes `content` to `dir/shadowcut-<name><ext>` (dir made if missing), or `-2`, `-3`... when that
 * file exists: never over an earlier report, since runs retried by a script can start within the
 * same second. Returns the path without `ext`, for the report's other files.
 */
async function freshStem(dir: string, name: string, ext: string, content: string): Promise<string> {
  await reportDir(dir);
  const base = path.resolve(dir, `shadowcut-${name.replace(/[^A-Za-z0-9._-]/g, '_')}`);
  for (let n = 1; ; n++) {
    const stem = `${base}${n > 1 ? `-${n}` : ''}`;
    try {
      await writeNewFile(stem + ext, content);
      return stem;
    } catch (failure) {
      if ((failure as NodeJS.ErrnoException).code !== 'EEXIST') throw failure;
    }
  }
}

export function buildReport({ state, result }: ReportInput, outcome: Outcome, error: string | null, now: Date): Report {
  const s = state.status;
  // The last of each: a postponed cut-over verifies twice, and the one that counts is just before the swap.
  const last = (event: string) => [...s.timeline].reverse().find((t) => t.event === event)?.at ?? null;
  const milestones = { start: last('start'), copyDone: last('copy done'), verified: last('verified'), cutover: last('cut-over'), end: last('end') };
  const startedAt = milestones.start ?? s.startedAt;
  const endedAt = milestones.end ?? now.toISOString();
  return {
    version: 1,
    table: s.table,
    alter: s.alter,
    engine: s.engine,
    outcome,
    // As stderr shows it: a driver's message may quote the URL, password and all.
    error: error === null ? null : redactUrlsIn(error),
    resumed: result?.resumed ?? null,
    startedAt,
    endedAt,
    durationMs: Date.parse(endedAt) - Date.parse(startedAt),
    milestones,
    timeline: s.timeline.map((t) => ({ ...t })),
    rowsCopied: s.rowsCopied,
    rowsEstimated: s.rowsEstimated,
    changesApplied: s.changesApplied,
    capture: s.capture,
    maxLagSeenMs: s.lagMs === null ? null : s.maxLagSeenMs,
    throttledMs: Object.values(s.throttledMs).reduce((a, b) => a + b, 0),
    throttledMsByReason: { ...s.throttledMs },
    cutoverAttempts: s.cutoverAttempts,
    cutoverLockedMs: s.cutoverLockedMs,
    checksumRounds: result?.checksumRounds ?? null,
    copyTimeProof: result?.copyTimeProof ?? null,
    mappingProofRows: result ? result.mappingProofs.map((p) => p.rows) : null,
    keysCompared: result?.keysCompared ?? null,
    keysComparedAtCutover: result?.keysComparedAtCutover ?? null,
    oldSnapshots: s.oldSnapshots.map((r) => ({ ...r })),
    series: { from: s.startedAt, maxLagMs: state.settings.maxLagMs, ...state.samples.series() },
    // A backfill's state names its SET/WHERE as `alter`, and its rowsCopied are the rows scanned.
    ...(s.command === 'backfill' ? { command: s.command, rowsUpdated: s.rowsUpdated } : {}),
  };
}

function markdown(r: Report): string {
  const since = (at: string) => duration(Date.parse(at) - Date.parse(r.startedAt));
  const reasons = Object.entries(r.throttledMsByReason).map(([reason, ms]) => `${reason} ${duration(ms)}`);
  const lines = [
    `# shadowcut: ${markdownText(r.table)}: ${r.outcome}`,
    '',
    ...table(
      ['', ''],
      [
        ['Table', r.table],
        ['Engine', r.engine],
        ['Outcome', r.outcome],
        ['Started', r.startedAt],
        ['Ended', r.endedAt],
        ['Duration', duration(r.durationMs)],
      ],
    ),
    '',
    r.command === 'backfill' ? 'Backfill:' : 'ALTER:',
    '',
    ...fenced(r.alter, 'sql'),
    ...(r.error === null ? [] : ['', 'Error:', '', ...fenced(r.error, 'text')]),
    '',
    '## Timeline',
    '',
    ...table(
      ['Event', 'At (UTC)', 'Since start'],
      r.timeline.map((t) => [t.event, t.at, since(t.at)]),
    ),
    '',
    '## Figures',
    '',
    ...table(
      ['', ''],
      r.command === 'backfill'
        ? backfillFigures(r, reasons)
        : [
            ['Rows copied', `${r.rowsCopied} (estimated ${r.rowsEstimated})`],
            ['Changes applied', `${r.changesApplied}${r.capture ? ` (${r.capture === 'stream' ? 'from the change stream' : 'recorded by triggers'})` : ''}`],
            ['Checksum rounds', r.checksumRounds === null ? 'unknown' : `${r.checksumRounds}${checksumScope(r.copyTimeProof)}`],
            ['Column mapping proven on', r.mappingProofRows === null ? 'unknown' : `${r.mappingProofRows.join(' + ')} sampled row(s)`],
            [
              'Changed rows compared row by row',
              r.keysCompared === null ? 'unknown' : `${r.keysCompared} (${r.keysComparedAtCutover} under the cut-over lock)`,
            ],
            ['Max replica lag seen', r.maxLagSeenMs === null ? 'no replica watched' : `${r.maxLagSeenMs} ms`],
            ['Time throttled', r.throttledMs === 0 ? 'none' : `${duration(r.throttledMs)} (${reasons.join(', ')})`],
            ['Cut-over attempts', String(r.cutoverAttempts)],
            ['Cut-over lock time', r.cutoverLockedMs === null ? 'no cut-over' : `${r.cutoverLockedMs} ms`],
            ['Older snapshots at the cut-over', oldSnapshotLine(r.oldSnapshots)],
          ],
    ),
  ];
  return lines.join('\n') + '\n';
}

function oldSnapshotLine(records: OldSnapshotRecord[]): string {
  if (records.length === 0) return 'none';
  return records.map((r) => `${r.session} (${[r.user, r.since && `since ${r.since}`].filter(Boolean).join(', ')}): ${r.outcome}`).join('; ');
}

function backfillFigures(r: Report, reasons: string[]): string[][] {
  return [
    ['Rows scanned', `${r.rowsCopied} (estimated ${r.rowsEstimated})`],
    ['Rows updated', String(r.rowsUpdated)],
    ['Resumed', r.resumed === null ? 'unknown' : r.resumed ? 'yes' : 'no'],
    ['Max replica lag seen', r.maxLagSeenMs === null ? 'no replica watched' : `${r.maxLagSeenMs} ms`],
    ['Time throttled', r.throttledMs === 0 ? 'none' : `${duration(r.throttledMs)} (${reasons.join(', ')})`],
  ];
}

function table(header: string[], rows: string[][]): string[] {
  const row = (cells: string[]) => `| ${cells.map(markdownText).join(' | ')} |`;
  return [row(header), row(header.map(() => '---')), ...rows.map(row)];
}

/** A code fence longer than any run of backticks inside, since MySQL ALTERs quote names with them. */
function fenced(text: string, lang: string): string[] {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return [fence + lang, shownLines(text), fence];
}

/** Runs last from seconds to days; "183245.2 s" is not something a person reads at a glance. */
function duration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const total = Math.round(ms / 1000);
  const parts: [number, string][] = [
    [Math.floor(total / 86_400), 'd'],
    [Math.floor(total / 3600) % 24, 'h'],
    [Math.floor(total / 60) % 60, 'min'],
    [total % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  return parts
    .slice(first, first + 3)
    .map(([n, unit]) => `${n} ${unit}`)
    .join(' ');
}

function checksumScope(p: Report['copyTimeProof']): string {
  if (!p) return ' (the whole table)';
  return ` (the copy-time chunk digests, ${p.chunksRechecked} chunk(s) checksummed again and ${p.keysCompared} changed row(s) compared)`;
}
