import { UserError } from './errors.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30m`, `12h`, `7d`, `2w`, `90s` or `0` as milliseconds; anything else is the operator's to fix. */
export function parseDuration(text: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$/i.exec(text);
  if (!m || (m[2] === '' && Number(m[1]) !== 0)) throw new UserError(`${option} ${text}: give a number with a unit (90s, 30m, 12h, 7d, 2w), or 0`);
  return Math.round(Number(m[1]) * (m[2] ? UNIT_MS[m[2].toLowerCase()] : 0));
}

/** A span for a person: the largest unit that keeps it whole enough (`7d`, `36h`, `90m`). */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm'] as const) if (ms >= 2 * UNIT_MS[unit]) return `${Math.floor(ms / UNIT_MS[unit])}${unit}`;
  return `${Math.round(ms / 1000)}s`;
}
