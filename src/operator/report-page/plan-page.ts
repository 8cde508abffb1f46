import type { PlanDetail } from '../../core/plan/plan.js';
import { formatSeconds } from './chart.js';
import { shownText } from '../../core/report/shown-text.js';
import { CSS, escape, escapeLines, PHASE_TONES } from './style.js';

/**
 * `plan --report-dir`: the plan as a page. For the copy, its estimate drawn as the run would unfold
 * (start-up and checks, the copy, the index builds, the verification) on one time axis; in place, the
 * steps and the lock each takes. The plan's own lines follow, as it printed them.
 */
export function planPage(detail: PlanDetail, summary: string[], plannedAt: Date): string {
  const title = `shadowcut plan: ${detail.table}`;
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escape(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head><body>',
    `<main data-path="${detail.path}">`,
    `<h1>${escape(title)}</h1>`,
    `<p class="muted">planned ${escape(plannedAt.toISOString())}</p>`,
    `<pre>${escapeLines(detail.alter)}</pre>`,
    `<p><strong>${detail.path === 'in-place' ? 'In place' : 'Copy'}</strong>: ${escape(detail.pathReason)}</p>`,
    detail.estimate ? estimateStrip(detail.estimate) : '',
    ...(detail.locks.length
      ? ['<h2>Locks</h2>', '<table class="figures">', ...detail.locks.map((l) => `<tr><td>${escape(l.step)}</td><td>${escape(l.lock)}</td></tr>`), '</table>']
      : []),
    '<h2>The plan</h2>',
    `<pre>${escapeLines(summary.map(shownText).join('\n'))}</pre>`,
    '</main>',
    '</body></html>',
  ].join('\n');
}

function estimateStrip(e: NonNullable<PlanDetail['estimate']>): string {
  const phases = [
    { name: 'start-up and checks', ms: e.fixedMs },
    { name: 'copy', ms: e.copyMs },
    { name: 'index builds', ms: e.indexMs },
    { name: 'verification', ms: e.verifyMs },
  ].filter((p) => p.ms > 0);
  const [left, width] = [20, 880];
  const x = (ms: number) => left + (ms / Math.max(e.totalMs, 1)) * width;
  let at = 0;
  const segments = phases.map((p, i) => {
    const [x1, x2] = [x(at), x(at + p.ms)];
    at += p.ms;
    const label = `${p.name}: ${formatSeconds(p.ms / 1000)}`;
    const fits = x2 - x1 > 6.5 * label.length + 6;
    return (
      `<g data-phase="${escape(p.name)}" data-ms="${Math.round(p.ms)}"><rect x="${x1.toFixed(1)}" y="30" width="${Math.max(1, x2 - x1).toFixed(1)}" height="28" fill="${PHASE_TONES[i % PHASE_TONES.length]}" stroke="#fff"/>` +
      `<text x="${fits ? ((x1 + x2) / 2).toFixed(1) : x1.toFixed(1)}" y="${fits ? 48 : 74 + 13 * i}"${fits ? ' text-anchor="middle"' : ' dx="2"'}>${escape(label)}</text></g>`
    );
  });
  const height = 80 + 13 * phases.length;
  return [
    `<h2>Estimate: about ${formatSeconds(e.totalMs / 1000)} without writes</h2>`,
    `<svg class="chart" role="img" viewBox="0 0 920 ${height}" data-chart="estimate" data-total-ms="${Math.round(e.totalMs)}" aria-label="estimate: ${escape(phases.map((p) => `${p.name} ${formatSeconds(p.ms / 1000)}`).join(', '))}">`,
    `<text class="chart-title" x="${left}" y="18">The run as the plan timed it on a sample of ${e.sample.rows.toLocaleString('en')} rows</text>`,
    ...segments,
    `<text x="${left + width}" y="${height - 4}" text-anchor="end" class="muted">then the cut-over: writers wait at most the lock timeout per attempt</text>`,
    '</svg>',
  ].join('\n');
}
