import { UserError } from '../engine/errors.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30m`, `12h`, `7d`, `2w`, `90s` or `0` as milliseconds; anything else is the operator's to fix. */
export function parseDuration(text: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$/i.exec(text);
  if (!m || (m[2] === '' && Number(m[1]) !== 0)) throw new UserError(`${option} ${text}: give a number with a unit (90s, 30m, 12h, 7d, 2w), or 0`);
  return Math.round(Number(m[1]) * (m[2] ? UNIT_MS[m[2].toLowerCase()] : 0));
}

/** A span for a person: in the largest unit it is a whole number of (`7d`, `1h`), else roughly (`36h`, `90m`, `4s`). */
export function formatDuration(ms: number): string {
  const units = ['d', 'h', 'm', 's'] as const;
  const whole = units.find((u) => ms >= UNIT_MS[u] && ms % UNIT_MS[u] === 0);
  if (whole) return `${ms / UNIT_MS[whole]}${whole}`;
  const rough = units.find((u) => ms >= 2 * UNIT_MS[u]) ?? 's';
  return `${Math.floor(ms / UNIT_MS[rough])}${rough}`;
}
