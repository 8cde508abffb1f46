// The bench as a page (bench/results/<timestamp>.html): per engine, each tool's run under load on one
// time axis (the writers' p50 and p99 per second, their slowest writes marked, the run's end), the
// wall times side by side, and the issue's targets. Drawn with the report page's charts.
import { timeChart, type Frame, type Marker } from '../src/operator/report-page/chart.js';
import { CSS, escape, patternDefs } from '../src/operator/report-page/style.js';
import { BYTES_LABELS, relaxedMark, sittingLines, type Sitting } from './durability.js';
import type { LoadStats } from './load.js';
import { bytesCell, bytesKinds, floorOf, median, runsOf, type BenchReport, type EngineReport, type RunResult, type Target } from './report.js';

/** A write slower than this is marked on its tool's chart: the issue's longest-wait target. */
const STALL_MS = 150;

export function benchPage(r: BenchReport): string {
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>shadowcut bench ${escape(r.startedAt)}${escape(relaxedMark(r.sitting?.asked))}</title>`,
    `<style>${CSS}</style>`,
    '</head><body>',
    patternDefs(),
    '<main>',
    `<h1>shadowcut bench ${escape(r.startedAt)}${escape(relaxedMark(r.sitting?.asked))}</h1>`,
    `<p class="muted">${escape(r.command)}<br>${escape(
      Object.entries(r.machine)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(', '),
    )}</p>`,
    ...(r.sitting ? [sittingPart(r.sitting)] : []),
    ...r.engines.flatMap((e) => enginePart(e, r.targets[e.engine] ?? [])),
    '</main>',
    '</body></html>',
  ].join('\n');
}

function enginePart(e: EngineReport, targets: Target[]): string[] {
  if (e.skipped) return [`<h2>${escape(e.server)}</h2>`, `<p>skipped: ${escape(e.skipped)}</p>`];
  const loaded = e.runs.filter((r) => r.mode === 'load' && r.load && r.round === 1);
  const xMax = Math.max(1, ...loaded.map((r) => r.load!.seconds), e.baseline?.seconds ?? 0);
  return [
    `<h2 data-engine="${e.engine}">${escape(e.server)}${e.replica ? ', replica attached' : ''}</h2>`,
    targetList(targets),
    wallBars(e),
    bytesTable(e),
    ...(loaded.length > 0
      ? [`<h2>Under load: the writers' latency per second (${escape(e.tables.load.workload)}, ${e.tables.load.rows} rows; round 1)</h2>`]
      : []),
    ...(e.baseline ? [latencyChart(`${e.engine}-baseline`, 'no migration (baseline)', e.baseline, xMax, null)] : []),
    ...loaded.map((r) => latencyChart(`${e.engine}-${r.tool}${r.setting ? `-${r.setting}` : ''}`, label(r), r.load!, xMax, r)),
  ];
}

/** The servers' durability as read from them and the disk's figures; a relaxed sitting in the colour of a failure. */
function sittingPart(s: Sitting): string {
  const [head, ...items] = sittingLines(s);
  const tone = s.asked === 'relaxed' ? 'outcome-failure' : 'muted';
  return `<p class="${tone}" data-durability="${s.asked}">${escape(head)}</p><ul class="sitting">${items.map((l) => `<li>${escape(l.replace(/^- /, ''))}</li>`).join('')}</ul>`;
}

/** What the primary wrote during each run, against the floor's in the same setting, mode and round. */
function bytesTable(e: EngineReport): string {
  const kinds = bytesKinds(e);
  if (kinds.length === 0) return '';
  const head = `<tr><td>MiB written (x floor)</td>${kinds.map((k) => `<td>${BYTES_LABELS[k]}</td>`).join('')}</tr>`;
  const rows = e.runs.map((r) => {
    const floor = r.tool === 'floor' ? undefined : floorOf(e, r);
    const cells = kinds.map((k) => `<td>${escape(bytesCell(r.bytes?.[k], floor?.bytes?.[k]))}</td>`).join('');
    return `<tr data-bytes="${escape(`${e.engine}-${label(r)}-${r.mode}-${r.round}`)}"><td>${escape(`${label(r)}, ${r.mode}${r.round > 1 ? ` #${r.round}` : ''}`)}</td>${cells}</tr>`;
  });
  const base = e.baselineBytes
    ? [`<tr><td>(no migration), load</td>${kinds.map((k) => `<td>${escape(bytesCell(e.baselineBytes?.[k], undefined))}</td>`).join('')}</tr>`]
    : [];
  return `<table class="figures">${head}${[...base, ...rows].join('')}</table>`;
}

function label(r: RunResult): string {
  return `${r.tool}${r.setting ? ` (${r.setting})` : ''}`;
}

function targetList(targets: Target[]): string {
  if (targets.length === 0) return '';
  const mark = (t: Target) => (t.pass === null ? 'not judged' : t.pass ? 'PASS' : 'FAIL');
  return `<ul class="targets">${targets.map((t) => `<li data-pass="${String(t.pass)}"><strong>${mark(t)}</strong> ${escape(t.text)}: ${escape(t.measured)}</li>`).join('')}</ul>`;
}

/** Each tool's wall time, the median of its rounds, as bars on one scale per mode. */
function wallBars(e: EngineReport): string {
  const groups = (['idle', 'load'] as const).map((mode) => ({ mode, runs: e.runs.filter((r) => r.mode === mode && r.ok) })).filter((g) => g.runs.length > 0);
  const rowH = 22;
  // One bar per tool and setting, as the target lines group them: the median of its runs, against the reference's in the same setting.
  const names = groups.map((g) => ({ mode: g.mode, tools: [...new Map(g.runs.map((r) => [label(r), r])).values()] }));
  const height = names.reduce((n, g) => n + (g.tools.length + 1) * rowH, 0) + 10;
  const longest = Math.max(1, ...e.runs.filter((r) => r.ok).map((r) => r.wallS));
  const scale = (s: number) => (s / longest) * 560;
  const out = [`<svg class="chart" role="img" viewBox="0 0 920 ${height}" data-chart="${e.engine}-wall" aria-label="wall time per tool">`];
  let y = 16;
  for (const g of names) {
    out.push(`<text class="chart-title" x="0" y="${y}">Wall time, ${g.mode === 'idle' ? 'idle' : 'under load'} (seconds, median of rounds)</text>`);
    y += rowH;
    for (const one of g.tools) {
      const wallOf = (tool: string) =>
        median(
          runsOf(e, tool, one.setting, g.mode).filter((r) => r.ok),
          (r) => r.wallS,
        );
      const [wall, refWall] = [wallOf(one.tool)!, wallOf(e.reference)];
      const tool = label(one);
      const ratio = refWall && tool.startsWith('shadowcut') ? ` (${(wall / refWall).toFixed(2)}x ${e.reference})` : '';
      out.push(
        `<g data-tool="${escape(tool)}" data-wall="${wall.toFixed(2)}"><text x="0" y="${y - 6}">${escape(tool)}</text>` +
          `<rect x="200" y="${y - 17}" width="${scale(wall).toFixed(1)}" height="14" fill="${tool.startsWith('shadowcut') ? '#0072B2' : '#E69F00'}"/>` +
          `<text x="${(205 + scale(wall)).toFixed(1)}" y="${y - 6}">${wall.toFixed(1)} s${escape(ratio)}</text></g>`,
      );
      y += rowH;
    }
  }
  out.push('</svg>');
  return out.join('\n');
}

/** One run's writers: p50 and p99 per second, the slowest writes marked, the tool's wall time. */
function latencyChart(id: string, title: string, load: LoadStats, xMax: number, run: RunResult | null): string {
  const points = (pick: (s: LoadStats['perSecond'][number]) => number) =>
    (load.perSecond ?? []).map((s) => ({ x: Math.min(s.s + 0.5, load.seconds), y: s.ops > 0 ? Math.round(pick(s) * 10) / 10 : null }));
  const stalls: Marker[] = load.slowest
    .filter((o) => o.ms >= STALL_MS)
    .slice(0, 4)
    .map((o) => ({ at: o.atS, label: `${o.op} waited ${Math.round(o.ms)} ms` }));
  const frame: Frame = {
    xMax,
    bands: [],
    markers: [...stalls, ...(run ? [{ at: run.wallS, label: `done: ${run.wallS.toFixed(1)} s`, strong: true }] : [])],
  };
  const served = load.offered > 0 ? `${(((load.ops - load.errors) / load.offered) * 100).toFixed(1)}% of the offered writes served` : '';
  const facts = `<p class="run-facts" data-run="${escape(id)}"><strong>${escape(title)}</strong>: ${run ? `wall ${run.wallS.toFixed(1)} s, ` : ''}writers' p99 ${load.p99Ms.toFixed(1)} ms, longest ${Math.round(load.maxMs)} ms${served ? `, ${served}` : ''}</p>`;
  return (
    facts +
    timeChart(
      {
        id,
        title,
        unit: 'ms',
        lines: [
          { label: 'p99 per second', points: points((s) => s.p99Ms) },
          { label: 'p50 per second', points: points((s) => s.p50Ms) },
        ],
        empty: 'no per-second figures in this result',
      },
      frame,
    )
  );
}
