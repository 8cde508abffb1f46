import { shownLines, shownText } from '../../core/report/shown-text.js';

/**
 * The page's look, chosen to be read in print and by colour-blind readers: the Okabe-Ito palette,
 * every held period told apart by its hatching as well as its colour, and every line labelled in
 * words, so no meaning rests on colour alone.
 */
export const INK = '#222';
export const SERIES_COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7'];

/** Each kind of hold (core/run/throttler.ts HoldKind): a hatching and a colour. */
export const HOLD_STYLES: Record<string, { pattern: string; colour: string; label: string }> = {
  replica: { pattern: 'diagonal', colour: '#E69F00', label: 'replica lag' },
  load: { pattern: 'cross', colour: '#D55E00', label: 'server load' },
  critical: { pattern: 'cross', colour: '#D55E00', label: 'critical load' },
  redo: { pattern: 'backward', colour: '#009E73', label: 'redo log filling' },
  flag: { pattern: 'dots', colour: '#56B4E9', label: '--throttle-flag-file' },
  query: { pattern: 'dots', colour: '#0072B2', label: '--throttle-query' },
  window: { pattern: 'horizontal', colour: '#999999', label: 'outside --window' },
  paused: { pattern: 'vertical', colour: '#CC79A7', label: 'paused by the operator' },
  rate: { pattern: 'backward', colour: '#F0E442', label: '--max-rows-per-sec' },
  nice: { pattern: 'horizontal', colour: '#56B4E9', label: '--nice-ratio' },
  writers: { pattern: 'vertical', colour: '#009E73', label: '--max-writer-slowdown' },
  other: { pattern: 'diagonal', colour: '#777777', label: 'held back' },
};

/** The phases' strip: alternating light tones, each segment named in words. */
export const PHASE_TONES = ['#DCEBF5', '#F7E3C8', '#D9EFE6', '#F1DCE8'];

/** The hatchings, defined once per page and shared by every chart. */
export function patternDefs(): string {
  const lines: Record<string, string> = {
    diagonal: '<path d="M0,8 L8,0" stroke-width="2"/>',
    backward: '<path d="M0,0 L8,8" stroke-width="2"/>',
    cross: '<path d="M0,8 L8,0 M0,0 L8,8" stroke-width="1.2"/>',
    horizontal: '<path d="M0,4 L8,4" stroke-width="2"/>',
    vertical: '<path d="M4,0 L4,8" stroke-width="2"/>',
    dots: '<circle cx="4" cy="4" r="1.6"/>',
  };
  const defs = Object.entries(HOLD_STYLES).map(
    ([kind, s]) =>
      `<pattern id="hold-${kind}" width="8" height="8" patternUnits="userSpaceOnUse">` +
      `<rect width="8" height="8" fill="${s.colour}" fill-opacity="0.18"/>` +
      `<g stroke="${s.colour}" fill="${s.colour}" stroke-opacity="0.75">${lines[s.pattern]}</g></pattern>`,
  );
  return `<svg width="0" height="0" aria-hidden="true" style="position:absolute"><defs>${defs.join('')}</defs></svg>`;
}

export const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: ${INK}; background: #fff; margin: 24px auto; max-width: 960px; padding: 0 16px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
.muted { fill: #666; color: #666; }
.outcome-success { color: #006b4f; } .outcome-failure { color: #b03000; } .outcome-running { color: #00508a; }
pre { background: #f4f4f4; padding: 8px; white-space: pre-wrap; word-break: break-word; }
table.figures { border-collapse: collapse; }
table.figures td { padding: 2px 12px 2px 0; vertical-align: top; }
table.figures td:first-child { color: #555; }
svg.chart, svg.phases { width: 100%; height: auto; display: block; margin: 4px 0 12px; }
svg text { font: 11px system-ui, sans-serif; fill: ${INK}; }
svg .chart-title { font-size: 13px; font-weight: 600; }
svg .grid { stroke: #e3e3e3; }
svg .marker line { stroke: #555; stroke-dasharray: 3 3; }
svg .marker text, svg .limit text { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
svg .marker.strong line { stroke: ${INK}; stroke-width: 2; stroke-dasharray: none; }
svg .marker.strong text { font-weight: 700; }
svg .limit line { stroke: #D55E00; stroke-dasharray: 6 3; stroke-width: 1.5; }
svg .limit text { fill: #a33f00; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 6px 18px; }
ul.legend svg { vertical-align: middle; margin-right: 4px; }
@media print { body { margin: 0; max-width: none; } svg.chart { break-inside: avoid; } .live-note { display: none; } }
`;

/**
 * Text in the page, one line: markup characters as entities, and control and bidi characters as
 * core/report/shown-text.ts shows them. An entity would not do for the latter: the browser turns
 * `&#x202e;` back into an override that reorders what follows it.
 */
export function escape(text: string): string {
  return html(shownText(text));
}

/** A block inside `<pre>` (an ALTER, an error, a plan): its own line breaks kept, each line as `escape` shows it. */
export function escapeLines(text: string): string {
  return html(shownLines(text));
}

function html(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
