import type { Sample } from '../../core/run/run-samples.js';
import { formatSeconds, timeChart, type Band, type Frame, type Marker } from './chart.js';
import { CSS, escape, escapeLines, HOLD_STYLES, patternDefs, PHASE_TONES } from './style.js';

/** What the page draws: a report (report.ts), or the live state in the same shape while the run goes on. */
export interface PageInput {
  table: string;
  alter: string;
  engine: string;
  outcome: 'success' | 'failure' | 'running';
  error: string | null;
  startedAt: string;
  durationMs: number;
  command?: 'backfill';
  timeline: { event: string; at: string }[];
  rowsCopied: number;
  rowsEstimated: number;
  rowsUpdated?: number;
  changesApplied: number;
  capture: 'stream' | 'trigger' | null;
  maxLagSeenMs: number | null;
  throttledMsByReason: Record<string, number>;
  cutoverAttempts: number;
  cutoverLockedMs: number | null;
  checksumRounds: number | null;
  series: { from: string; periodMs: number; maxLagMs: number; samples: Sample[] };
}

/** How often the live page asks for itself again. */
const LIVE_REFRESH_MS = 2000;

/**
 * The run as one self-contained HTML page (no script, font or style from elsewhere): its figures,
 * then charts over its time. `live`: the metrics endpoint's page, which fetches itself again and
 * swaps in the new charts while the run goes on.
 */
export function reportPage(r: PageInput, options: { live?: boolean } = {}): string {
  const title = `shadowcut: ${r.table}: ${r.outcome === 'running' ? 'running' : r.outcome}`;
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escape(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head><body>',
    patternDefs(),
    `<main data-outcome="${r.outcome}" data-samples="${r.series.samples.length}">`,
    ...header(r, title),
    ...charts(r),
    '</main>',
    ...(options.live ? [liveScript()] : []),
    '</body></html>',
  ].join('\n');
}

function header(r: PageInput, title: string): string[] {
  const backfill = r.command === 'backfill';
  const held = Object.entries(r.throttledMsByReason).filter(([, ms]) => ms > 0);
  const rows: [string, string][] = [
    ['Engine', r.engine],
    ['Started', r.startedAt],
    [r.outcome === 'running' ? 'Running for' : 'Duration', formatSeconds(r.durationMs / 1000)],
    [backfill ? 'Rows scanned' : 'Rows copied', `${r.rowsCopied.toLocaleString('en')} of about ${r.rowsEstimated.toLocaleString('en')}`],
    ...(backfill
      ? ([['Rows updated', String(r.rowsUpdated ?? 0)]] as [string, string][])
      : ([
          ['Changes applied', `${r.changesApplied.toLocaleString('en')}${r.capture ? ` (${r.capture === 'stream' ? 'change stream' : 'triggers'})` : ''}`],
          ['Checksum rounds', r.checksumRounds === null ? 'not known' : String(r.checksumRounds)],
          ['Cut-over', cutoverText(r)],
        ] as [string, string][])),
    ['Longest replica lag', r.maxLagSeenMs === null ? 'no replica watched' : `${r.maxLagSeenMs} ms (limit ${r.series.maxLagMs} ms)`],
    ['Held back', held.length === 0 ? 'never' : held.map(([kind, ms]) => `${HOLD_STYLES[kind]?.label ?? kind} ${heldFor(ms)}`).join(', ')],
  ];
  return [
    `<h1 class="outcome-${r.outcome}">${escape(title)}</h1>`,
    ...(r.outcome === 'running' ? ['<p class="live-note muted">Live: this page updates itself every few seconds.</p>'] : []),
    `<pre>${escapeLines(r.alter)}</pre>`,
    ...(r.error ? [`<p><strong>Error:</strong></p><pre>${escapeLines(r.error)}</pre>`] : []),
    '<table class="figures">',
    ...rows.map(([k, v]) => `<tr><td>${escape(k)}</td><td>${escape(v)}</td></tr>`),
    '</table>',
  ];
}

/**
 * A time held back, to a tenth of a second below a minute, as the markdown report says it: a rate
 * limit rests a fraction of a second after each chunk, and in whole seconds a copy held to its
 * --max-rows-per-sec for 0.4 s in all read "--max-rows-per-sec 0 s".
 */
function heldFor(ms: number): string {
  if (ms < 100) return 'under 0.1 s';
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : formatSeconds(ms / 1000);
}

function cutoverText(r: PageInput): string {
  if (r.cutoverLockedMs === null) return r.cutoverAttempts > 0 ? `not made (${r.cutoverAttempts} attempt(s))` : 'not reached';
  return `writers blocked ${r.cutoverLockedMs} ms, ${r.cutoverAttempts} attempt(s)`;
}

function charts(r: PageInput): string[] {
  const { samples, maxLagMs } = r.series;
  const from = Date.parse(r.series.from);
  const seconds = (at: string) => Math.max(0, (Date.parse(at) - from) / 1000);
  const frame: Frame = {
    xMax: Math.max(samples.length ? samples[samples.length - 1].t / 1000 : 0, ...r.timeline.map((t) => seconds(t.at))),
    bands: heldBands(samples),
    markers: markers(r, seconds),
  };
  const xs = samples.map((s) => s.t / 1000);
  const series = (label: string, pick: (s: Sample) => number | null) => [{ label, points: samples.map((s, i) => ({ x: xs[i], y: pick(s) })) }];
  const backfill = r.command === 'backfill';
  const watched = samples.some((s) => s.lagMs !== null);
  return [
    '<h2>Over the run</h2>',
    phaseStrip(samples, frame.xMax),
    timeChart({ id: 'rows', title: backfill ? 'Rows scanned' : 'Rows copied', unit: 'rows', lines: series('rows', (s) => s.rowsCopied) }, frame),
    timeChart({ id: 'rate', title: backfill ? 'Scan rate' : 'Copy rate', unit: 'rows/s', lines: series('rate', (s) => s.rowsPerSec) }, frame),
    ...(backfill
      ? []
      : [timeChart({ id: 'backlog', title: 'Change backlog: changed keys not yet applied', unit: 'keys', lines: series('backlog', (s) => s.backlog) }, frame)]),
    timeChart(
      {
        id: 'lag',
        title: 'Replica lag',
        unit: 'ms',
        lines: series('lag', (s) => s.lagMs),
        ...(watched ? { limit: { y: maxLagMs, label: `--max-lag-ms ${maxLagMs}` } } : {}),
        empty: 'no replica watched',
      },
      frame,
    ),
    timeChart(
      {
        id: 'probe',
        title: 'Table probe: a statement that takes a writer\u2019s first lock, timed',
        unit: 'ms',
        lines: series('probe', (s) => s.probeMs),
        empty: 'not probed',
      },
      frame,
    ),
    legend(frame.bands, r.series.periodMs),
  ];
}

/** Consecutive samples held back for the same kind of reason, as one shaded period. */
function heldBands(samples: Sample[]): Band[] {
  const bands: Band[] = [];
  samples.forEach((s, i) => {
    if (!s.held) return;
    const from = i > 0 ? samples[i - 1].t / 1000 : 0;
    const last = bands[bands.length - 1];
    if (last && last.kind === s.held && Math.abs(last.to - from) < 1e-9) last.to = s.t / 1000;
    else bands.push({ from, to: s.t / 1000, kind: s.held });
  });
  return bands;
}

function markers(r: PageInput, seconds: (at: string) => number): Marker[] {
  let rounds = 0;
  const verifiedTotal = r.timeline.filter((t) => t.event === 'verified').length;
  const shown: Marker[] = [];
  for (const t of r.timeline) {
    if (t.event === 'start') continue;
    if (t.event === 'cut-over') {
      shown.push({ at: seconds(t.at), strong: true, label: `cut-over: writers blocked ${r.cutoverLockedMs ?? '?'} ms (${r.cutoverAttempts} attempt(s))` });
    } else if (t.event === 'verified') {
      rounds++;
      shown.push({ at: seconds(t.at), label: verifiedTotal > 1 ? `verified (${rounds})` : 'verified' });
    } else {
      shown.push({ at: seconds(t.at), label: t.event });
    }
  }
  return shown;
}

/** The phases as a strip of named segments on the same time axis. */
function phaseStrip(samples: Sample[], xMax: number): string {
  const W = 920;
  const left = 70;
  const plot = W - left - 20;
  const x = (s: number) => left + (s / Math.max(xMax, 1)) * plot;
  const segments: { phase: string; from: number; to: number }[] = [];
  samples.forEach((s, i) => {
    const from = i > 0 ? samples[i - 1].t / 1000 : 0;
    const last = segments[segments.length - 1];
    if (last && last.phase === s.phase) last.to = s.t / 1000;
    else segments.push({ phase: s.phase, from, to: s.t / 1000 });
  });
  const rects = segments.map((seg, i) => {
    const [x1, x2] = [x(seg.from), x(seg.to)];
    const label = x2 - x1 > 6.5 * seg.phase.length + 6 ? `<text x="${((x1 + x2) / 2).toFixed(1)}" y="27" text-anchor="middle">${escape(seg.phase)}</text>` : '';
    return (
      `<g data-phase="${escape(seg.phase)}"><rect x="${x1.toFixed(1)}" y="12" width="${Math.max(1, x2 - x1).toFixed(1)}" height="22" fill="${PHASE_TONES[i % PHASE_TONES.length]}" stroke="#fff">` +
      `<title>${escape(seg.phase)}: ${formatSeconds(seg.from)} to ${formatSeconds(seg.to)}</title></rect>${label}</g>`
    );
  });
  return [
    `<svg class="phases" role="img" viewBox="0 0 ${W} 40" aria-label="phases: ${escape(segments.map((s) => s.phase).join(', '))}">`,
    `<text class="chart-title" x="0" y="27">Phases</text>`,
    ...rects,
    '</svg>',
  ].join('\n');
}

function legend(bands: Band[], periodMs: number): string {
  const kinds = [...new Set(bands.map((b) => b.kind))];
  const swatch = (kind: string) =>
    `<svg width="22" height="12" aria-hidden="true"><rect width="22" height="12" fill="url(#hold-${kind in HOLD_STYLES ? kind : 'other'})" stroke="#999"/></svg>`;
  const items = [
    ...kinds.map((k) => `<li>${swatch(k)}held back: ${escape(HOLD_STYLES[k]?.label ?? k)}</li>`),
    '<li>dashed line: a moment of the run; solid: the cut-over</li>',
    `<li>a point every ${formatSeconds(periodMs / 1000)} (longer runs are drawn coarser, keeping each period's worst)</li>`,
  ];
  return `<ul class="legend">${items.join('')}</ul>`;
}

/** Fetches the page again and swaps in its <main>: no library, nothing from elsewhere. */
function liveScript(): string {
  return `<script>
(() => {
  let refreshes = 0;
  const refresh = async () => {
    try {
      const response = await fetch(location.href, { cache: 'no-store' });
      if (!response.ok) return;
      const next = new DOMParser().parseFromString(await response.text(), 'text/html');
      const main = next.querySelector('main');
      if (main) document.querySelector('main').replaceWith(main);
      document.title = next.title;
      document.documentElement.dataset.refreshes = String(++refreshes);
    } catch (e) { /* the run ended and took the endpoint with it: the last page stays */ }
  };
  setInterval(refresh, ${LIVE_REFRESH_MS});
})();
</script>`;
}
