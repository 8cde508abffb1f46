// QueueWindow, zoneClock and untilTime (src/core/queue/window.ts), with parseWindow and inRange
// (src/core/run/throttler.ts) that they build on: a daily window in a time zone, across midnight too.
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/core/engine/errors.js';
import { inRange, parseWindow } from '../../src/core/run/throttler.js';
import { QueueWindow, untilTime } from '../../src/core/queue/window.js';

const H = 3_600_000;
const utc = (time: string) => new Date(`2024-01-15T${time}Z`);

describe('parseWindow', () => {
  it('reads ranges in seconds since midnight, several separated by commas', () => {
    expect(parseWindow('01:00-05:30')).toEqual([{ from: 3600, to: 19_800 }]);
    expect(parseWindow('12:00-13:00, 22:00:30-24:00')).toEqual([
      { from: 43_200, to: 46_800 },
      { from: 79_230, to: 86_400 },
    ]);
  });

  it.each(['1-5', '25:00-03:00', '01:60-02:00', '24:00-01:00', '01:00-24:01', '01:00', '01:00-02:00,', '1:00:60-02:00'])('refuses %j', (text) => {
    expect(() => parseWindow(text)).toThrow(`--window ${text} is not HH:MM-HH:MM (local time), e.g. 01:00-05:00, or several separated by commas`);
  });
});

describe('inRange', () => {
  it('includes the start and excludes the end, across midnight too', () => {
    const night = { from: 22 * 3600, to: 2 * 3600 };
    expect([22 * 3600, 23 * 3600, 0, 2 * 3600 - 1, 2 * 3600, 12 * 3600].map((t) => inRange(night, t))).toEqual([true, true, true, true, false, false]);
    const day = { from: 3600, to: 5 * 3600 };
    expect([3600 - 1, 3600, 5 * 3600 - 1, 5 * 3600].map((t) => inRange(day, t))).toEqual([false, true, true, false]);
  });
});

describe('QueueWindow.msLeft', () => {
  it('is the time to the end of the range inside it, and 0 outside', () => {
    const w = new QueueWindow('01:00-05:00', 'UTC');
    expect(w.msLeft(utc('00:59:59'))).toBe(0);
    expect(w.msLeft(utc('01:00:00'))).toBe(4 * H);
    expect(w.msLeft(utc('02:00:00.500'))).toBe(3 * H - 500);
    expect(w.msLeft(utc('04:59:59'))).toBe(1000);
    expect(w.msLeft(utc('05:00:00'))).toBe(0);
  });

  it('runs across midnight', () => {
    const w = new QueueWindow('22:00-02:00', 'UTC');
    expect(w.msLeft(utc('23:30:00'))).toBe(2.5 * H);
    expect(w.msLeft(utc('00:00:00'))).toBe(2 * H);
    expect(w.msLeft(utc('01:00:00'))).toBe(H);
    expect(w.msLeft(utc('12:00:00'))).toBe(0);
    expect(w.msLeft(utc('21:59:59'))).toBe(0);
  });

  it('reads the clock in its time zone, daylight saving time included', () => {
    const w = new QueueWindow('01:00-05:00', 'Europe/Berlin');
    expect(w.msLeft(new Date('2024-01-15T00:30:00Z'))).toBe(3.5 * H); // 01:30 CET
    expect(w.msLeft(new Date('2024-07-15T00:30:00Z'))).toBe(2.5 * H); // 02:30 CEST
    expect(w.msLeft(new Date('2024-07-15T03:30:00Z'))).toBe(0); // 05:30 CEST
  });

  it('takes the longest of overlapping ranges, and an end at 24:00', () => {
    expect(new QueueWindow('01:00-03:00,02:00-05:00', 'UTC').msLeft(utc('02:30:00'))).toBe(2.5 * H);
    expect(new QueueWindow('12:00-13:00,22:00-02:00', 'UTC').msLeft(utc('12:30:00'))).toBe(H / 2);
    expect(new QueueWindow('22:00-24:00', 'UTC').msLeft(utc('23:00:00'))).toBe(H);
  });

  it('refuses a window that never opens, and a zone that does not exist', () => {
    expect(() => new QueueWindow('03:00-03:00', 'UTC')).toThrow(new UserError('--window 03:00-03:00 never opens: its start and its end are the same'));
    expect(() => new QueueWindow('01:00-02:00', 'Mars/Olympus')).toThrow('--tz Mars/Olympus: not a time zone (an IANA name, e.g. Europe/Berlin)');
  });

  it('describes itself with its zone', () => {
    expect(new QueueWindow('01:00-05:00', 'Europe/Berlin').describe()).toBe('01:00-05:00 Europe/Berlin');
    expect(new QueueWindow('01:00-05:00', undefined).describe()).toBe('01:00-05:00');
  });
});

describe('untilTime', () => {
  it('is today when the time is still ahead, else tomorrow (local time)', () => {
    const now = new Date(2024, 0, 15, 3, 0, 0);
    expect(untilTime('06:00', now)).toEqual(new Date(2024, 0, 15, 6, 0, 0));
    expect(untilTime('6:30:15', now)).toEqual(new Date(2024, 0, 15, 6, 30, 15));
    expect(untilTime('02:59', now)).toEqual(new Date(2024, 0, 16, 2, 59, 0));
    expect(untilTime('03:00', now)).toEqual(new Date(2024, 0, 16, 3, 0, 0));
    expect(untilTime('23:59:59', new Date(2024, 11, 31, 23, 59, 59, 500))).toEqual(new Date(2025, 0, 1, 23, 59, 59));
  });

  it.each(['24:00', '6', '06:60', '06:00:60', '6h', ''])('refuses %j', (text) => {
    expect(() => untilTime(text, new Date())).toThrow(`--until ${text} is not HH:MM (local time), e.g. 06:00`);
  });
});
