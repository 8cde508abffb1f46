// parseDuration / formatDuration (src/core/run/duration.ts): the operator's spans (--min-soak, --keep...).
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/run/duration.js';
import { UserError } from '../../src/core/engine/errors.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['12h', 43_200_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['0', 0],
    ['0.0', 0],
    ['0s', 0],
    [' 1.5h ', 5_400_000],
    ['2H', 7_200_000],
    ['10 m', 600_000],
    ['0.0015s', 2],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text, '--min-soak')).toBe(ms);
  });

  it.each(['10', '', '-5m', '5 minutes', '1y', 'm', '1e3s', '1,5h', '.5h'])('refuses %j in one line naming the option', (text) => {
    expect(() => parseDuration(text, '--min-soak')).toThrow(UserError);
    expect(() => parseDuration(text, '--min-soak')).toThrow(`--min-soak ${text}: give a number with a unit (90s, 30m, 12h, 7d, 2w), or 0`);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [4_500, '4s'],
    [90_000, '90s'],
    [5_400_000, '90m'],
    [3_600_000, '1h'],
    [129_600_000, '36h'],
    [604_800_000, '7d'],
    [172_800_001, '2d'],
    [119_999, '119s'],
    [999, '0s'],
  ])('%d ms is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('reads back what parseDuration reads for whole units', () => {
    for (const text of ['90s', '30m', '12h', '7d']) expect(formatDuration(parseDuration(text, '--x'))).toBe(text);
  });
});
