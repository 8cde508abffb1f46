import { describe, expect, it } from 'vitest';
import { DEFAULT_MIN_SOAK_MS, retiringStage, soakCheck } from '../src/core/contract/soak.js';
import { formatDuration, parseDuration } from '../src/core/run/duration.js';
import type { DropTarget } from '../src/core/engine/ports/contract.js';
import type { HistoryEntry } from '../src/core/engine/ports/history.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-23T12:00:00.000Z');

function entry(
  command: HistoryEntry['command'],
  stage: string,
  daysAgo: number,
  outcome: HistoryEntry['outcome'] = 'success',
  detail: object = {},
): HistoryEntry {
  const at = new Date(NOW - daysAgo * DAY).toISOString();
  return { table: 'db.t', command, stage, startedAt: at, finishedAt: at, outcome, rowsTouched: 0, checks: [], summary: [], detail, by: 'me' };
}

describe('the soak a contract waits for', () => {
  it('reads durations with a unit, or 0, and refuses the rest', () => {
    expect(['90s', '30m', '12h', '7d', '2w', '0', '1.5h'].map((t) => parseDuration(t, '--min-soak'))).toEqual([
      90_000,
      1_800_000,
      43_200_000,
      7 * DAY,
      14 * DAY,
      0,
      5_400_000,
    ]);
    for (const bad of ['7', '', 'd', '-1d', '7 days', '1y']) expect(() => parseDuration(bad, '--min-soak')).toThrow(/--min-soak .*give a number with a unit/);
    expect([7 * DAY, 3_600_000, 90 * 60_000, 36 * 3_600_000, 2_500].map(formatDuration)).toEqual(['7d', '1h', '90m', '36h', '2s']);
  });

  it('counts only successful migrate, backfill, verify and restore stages that retire what goes', () => {
    const entries = [
      entry('migrate', 'ADD COLUMN email_addr VARCHAR(255) NULL', 10),
      entry('backfill', 'SET email_addr = email WHERE email_addr IS NULL', 9),
      entry('verify', 'expect email_addr = email', 8),
      entry('backfill', 'SET email_addr = lower(email)', 1, 'failure'),
      entry('plan', 'RENAME COLUMN email TO email_addr', 0),
      entry('contract', 'DROP COLUMN email', 0),
      entry('verify', 'expect emails_seen > 0', 0),
    ];
    const column: DropTarget = { kind: 'column', columns: ['email'] };
    expect(retiringStage(entries, column)?.stage).toBe('expect email_addr = email');
    expect(retiringStage(entries, { kind: 'column', columns: ['other'] })).toBeNull();
    // An index: any migrate (where its replacement is made), or a stage naming it.
    expect(retiringStage(entries, { kind: 'index', index: 'k_email' })?.command).toBe('migrate');
    // The table: any of them; of verifies after the latest change, the first (a later one is a re-check).
    expect(retiringStage(entries, { kind: 'table' })?.stage).toBe('expect email_addr = email');
    // A restore names the backup; its detail names the columns it put back.
    const restored = [entry('restore', 'restore from t_bak', 2, 'success', { columns: [{ name: 'Email', definition: 'text' }] })];
    expect(retiringStage(restored, column)?.command).toBe('restore');
  });

  it('a verify run again before the contract does not start the soak over; a change after the first verify does', () => {
    const column: DropTarget = { kind: 'column', columns: ['email'] };
    const switched = [
      entry('backfill', 'SET email_addr = email WHERE email_addr IS NULL', 10),
      entry('verify', 'expect email_addr = email', 9),
      entry('verify', 'expect email_addr = email', 0),
    ];
    expect(retiringStage(switched, column)?.finishedAt).toBe(switched[1].finishedAt);
    expect(soakCheck('db.t', switched, column, DEFAULT_MIN_SOAK_MS, NOW).check.ok).toBe(true);
    const again = [
      ...switched.slice(0, 2),
      entry('backfill', 'SET email_addr = lower(email)', 3),
      entry('verify', 'expect email_addr = lower(email)', 2),
      switched[2],
    ];
    expect(retiringStage(again, column)?.stage).toBe('expect email_addr = lower(email)');
    expect(retiringStage([switched[0]], column)?.command).toBe('backfill');
  });

  it('refuses inside the soak, passes after it, and records --min-soak 0 as an override', () => {
    const entries = [entry('verify', 'expect email_addr = email', 2)];
    const column: DropTarget = { kind: 'column', columns: ['email'] };
    const inside = soakCheck('db.t', entries, column, DEFAULT_MIN_SOAK_MS, NOW);
    expect(inside.check.ok).toBe(false);
    expect(inside.check.message).toBe(
      'inside the soak: verify "expect email_addr = email" finished 2026-11-21T12:00:00.000Z (2d ago), and --min-soak 7d ends 2026-11-28T12:00:00.000Z; contract then, or give --min-soak 0 to go ahead now (recorded in the history)',
    );
    expect(soakCheck('db.t', entries, column, DAY, NOW).check).toMatchObject({ ok: true, message: /the 1d soak is over/ });
    const forced = soakCheck('db.t', entries, column, 0, NOW);
    expect(forced.check).toMatchObject({ ok: true, message: /^overridden by --min-soak 0: verify/ });
    expect(forced.record).toMatchObject({ minSoakMs: 0, overridden: true, endsAt: '2026-11-28T12:00:00.000Z' });
    // 0 overrides nothing once the default soak is over anyway.
    expect(soakCheck('db.t', [entry('verify', 'expect email_addr = email', 8)], column, 0, NOW).record.overridden).toBe(false);
    expect(soakCheck('db.t', [], column, DEFAULT_MIN_SOAK_MS, NOW)).toMatchObject({
      check: { ok: true, message: /no soak to wait for/ },
      record: { since: null },
    });
  });
});
