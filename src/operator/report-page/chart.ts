import { scaleLinear } from 'd3-scale';
import { line } from 'd3-shape';
import { escape, HOLD_STYLES, INK, SERIES_COLOURS } from './style.js';

/** A period the copy was held back, in seconds from the run's start. */
export interface Band {
  from: number;
  to: number;
  kind: string;
}

/** A moment of the run drawn across every chart, in seconds from its start. */
export interface Marker {
  at: number;
  label: string;
  /** The cut-over: drawn heavier, its label first. */
  strong?: boolean;
}

export interface Point {
  x: number;
  y: number | null;
}

export interface ChartSpec {
  /** Names the chart in the page (`data-chart`), for readers and tests. */
  id: string;
  title: string;
  unit: string;
  /** One or more series over the same axes; the first is the chart's own (`data-points`), the others are drawn dashed. */
  lines: { label: string; points: Point[] }[];
  /** A threshold drawn across, e.g. `--max-lag-ms`. */
  limit?: { y: number; label: string };
  /** Said in place of the line when there is nothing to draw. */
  empty?: string;
}

/** What every chart of a page shares: one time axis, the held periods and the run's moments. */
export interface Frame {
  xMax: number;
  bands: Band[];
  markers: Marker[];
}

const WIDTH = 920;
const HEIGHT = 200;
const M = { left: 70, right: 20, top: 30, bottom: 30 };
const PLOT_W = WIDTH - M.left - M.right;
const PLOT_H = HEIGHT - M.top - M.bottom;
/** Time steps a tick may take, in seconds: ticks land on round clock values, not on 2,000 s. */
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400];

/** One time chart as inline SVG: the series, the held periods shaded by kind, the moments as lines. */
export function timeChart(spec: ChartSpec, frame: Frame): string {
  const x = scaleLinear()
    .domain([0, Math.max(frame.xMax, 1)])
    .range([0, PLOT_W]);
  const defined = (points: Point[]) => points.map((p) => p.y).filter((v): v is number => v !== null);
  const values = spec.lines.flatMap((l) => defined(l.points));
  const top = Math.max(1, ...values, spec.limit ? spec.limit.y * 1.1 : 0);
  const y = scaleLinear().domain([0, top]).range([PLOT_H, 0]).nice(4);
  const path = line<Point>()
    .defined((p) => p.y !== null)
    .x((p) => x(p.x))
    .y((p) => y(p.y ?? 0));
  const peak = values.length > 0 ? Math.max(...values) : null;
  const own = spec.lines.length > 0 ? defined(spec.lines[0].points).length : 0;
  const named = spec.lines.length > 1 ? `; ${spec.lines.map((l, i) => `${i === 0 ? 'solid' : 'dashed'}: ${l.label}`).join(', ')}` : '';
  const summary = peak === null ? (spec.empty ?? 'no data') : `highest ${formatNumber(peak)} ${spec.unit}`;
  const parts = [
    `<svg class="chart" role="img" viewBox="0 0 ${WIDTH} ${HEIGHT}" data-chart="${spec.id}" data-points="${own}" data-max="${peak ?? ''}" aria-labelledby="${spec.id}-title ${spec.id}-desc">`,
    `<title id="${spec.id}-title">${escape(spec.title)}</title>`,
    `<desc id="${spec.id}-desc">${escape(summary)}</desc>`,
    `<text class="chart-title" x="${M.left}" y="18">${escape(spec.title)} <tspan class="muted">(${escape(spec.unit)}; ${escape(summary)}${escape(named)})</tspan></text>`,
    `<g transform="translate(${M.left},${M.top})">`,
    ...frame.bands.map((b) => band(b, x)),
    ...yAxis(y),
    xAxis(x, frame.xMax),
    ...placeLabels(frame.markers, x).map((placed) => marker(placed, x)),
    ...(spec.limit ? [limitLine(spec.limit, y)] : []),
    values.length > 0
      ? spec.lines.map((l, i) => series(l, SERIES_COLOURS[i % SERIES_COLOURS.length], i > 0, path, x, y)).join('\n')
      : `<text class="muted" x="${PLOT_W / 2}" y="${PLOT_H / 2}" text-anchor="middle">${escape(spec.empty ?? 'no data')}</text>`,
    '</g>',
    '</svg>',
  ];
  return parts.join('\n');
}

/** A line; with fewer than three points, also a dot on each, since a path through one point draws nothing. */
function series(
  l: ChartSpec['lines'][number],
  colour: string,
  dashed: boolean,
  path: (points: Point[]) => string | null,
  x: (v: number) => number,
  y: (v: number) => number,
): string {
  const shown = l.points.filter((p) => p.y !== null);
  const dots = shown.length < 3 ? shown.map((p) => `<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y!).toFixed(1)}" r="3" fill="${colour}"/>`).join('') : '';
  return `<path class="series" data-line="${escape(l.label)}" d="${path(l.points) ?? ''}" fill="none" stroke="${colour}" stroke-width="2"${dashed ? ' stroke-dasharray="6 3"' : ''}/>${dots}`;
}

function band(b: Band, x: (v: number) => number): string {
  const kind = b.kind in HOLD_STYLES ? b.kind : 'other';
  const width = Math.max(1, x(b.to) - x(b.from));
  return `<rect class="held" data-kind="${escape(b.kind)}" x="${x(b.from).toFixed(1)}" y="0" width="${width.toFixed(1)}" height="${PLOT_H}" fill="url(#hold-${kind})"><title>held back: ${escape(b.kind)}, ${formatSeconds(b.from)} to ${formatSeconds(b.to)}</title></rect>`;
}

function yAxis(y: ReturnType<typeof scaleLinear<number, number>>): string[] {
  return y.ticks(4).map((v) => {
    const at = y(v).toFixed(1);
    return `<line class="grid" x1="0" x2="${PLOT_W}" y1="${at}" y2="${at}"/><text class="tick" x="-8" y="${at}" dy="0.32em" text-anchor="end">${formatNumber(v)}</text>`;
  });
}

function xAxis(x: (v: number) => number, xMax: number): string {
  const step = TIME_STEPS.find((s) => xMax / s <= 8) ?? 86_400;
  const ticks: string[] = [`<line class="axis" x1="0" x2="${PLOT_W}" y1="${PLOT_H}" y2="${PLOT_H}" stroke="${INK}"/>`];
  for (let t = 0; t <= xMax; t += step) {
    ticks.push(`<text class="tick" x="${x(t).toFixed(1)}" y="${PLOT_H + 18}" text-anchor="middle">${formatSeconds(t)}</text>`);
  }
  return ticks.join('');
}

/** Where each moment's label goes: right of its line, or left of it near the right edge; and the first row where it runs into no other label. */
function placeLabels(markers: Marker[], x: (v: number) => number): { m: Marker; row: number; left: boolean }[] {
  const rows: [number, number][][] = [];
  // The cut-over's first: its label is the one a reader looks for.
  return [...markers]
    .sort((a, b) => Number(b.strong ?? false) - Number(a.strong ?? false) || a.at - b.at)
    .map((m) => {
      const at = x(m.at);
      const width = 6.2 * m.label.length + 6;
      const left = at + width > PLOT_W;
      const span: [number, number] = left ? [at - width, at] : [at, at + width];
      let row = rows.findIndex((taken) => taken.every(([a, b]) => span[1] < a || span[0] > b));
      if (row === -1) row = rows.push([]) - 1;
      rows[row].push(span);
      return { m, row, left };
    });
}

function marker({ m, row, left }: { m: Marker; row: number; left: boolean }, x: (v: number) => number): string {
  const at = x(m.at).toFixed(1);
  const anchor = left ? ' text-anchor="end" dx="-3"' : ' dx="3"';
  return (
    `<g class="marker${m.strong ? ' strong' : ''}"><line x1="${at}" x2="${at}" y1="0" y2="${PLOT_H}"/>` +
    `<text x="${at}" y="${10 + 13 * row}"${anchor}>${escape(m.label)}</text></g>`
  );
}

function limitLine(limit: NonNullable<ChartSpec['limit']>, y: (v: number) => number): string {
  const at = y(limit.y).toFixed(1);
  return `<g class="limit"><line x1="0" x2="${PLOT_W}" y1="${at}" y2="${at}"/><text x="${PLOT_W}" y="${at}" dy="-4" text-anchor="end">${escape(limit.label)}</text></g>`;
}

/** 0 s, 45 s, 2 min 30 s, 1 h 05 min: what a clock on the wall says. */
export function formatSeconds(s: number): string {
  const total = Math.round(s);
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min${total % 60 ? ` ${total % 60} s` : ''}`;
  const minutes = Math.floor(total / 60) % 60;
  return `${Math.floor(total / 3600)} h${minutes ? ` ${String(minutes).padStart(2, '0')} min` : ''}`;
}

export function formatNumber(v: number): string {
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(Math.abs(v) >= 1e7 ? 0 : 1)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
