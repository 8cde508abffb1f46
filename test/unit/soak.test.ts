// retiringStage / soakCheck (src/core/contract/soak.ts): which stage of the history a contract
// retires, and whether its soak is over. The clock is a parameter; the history is built here.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MIN_SOAK_MS, retiringStage, soakCheck } from '../../src/core/contract/soak.js';
import type { Command, HistoryEntry, StageOutcome } from '../../src/core/engine/ports/history.js';

const DAY = 86_400_000;
const T0 = Date.parse('2024-01-01T00:00:00.000Z');

function entry(command: Command, stage: string, day: number, outcome: StageOutcome = 'success', detail: object = {}): HistoryEntry {
  const finishedAt = new Date(T0 + day * DAY).toISOString();
  return { table: 'app.users', command, stage, startedAt: finishedAt, finishedAt, outcome, rowsTouched: 0, checks: [], summary: [], detail, by: 'me@host' };
}

describe('retiringStage', () => {
  const column = { kind: 'column' as const, columns: ['email'] };

  it('is the latest successful change that names the column as a word', () => {
    const history = [
      entry('backfill', 'email_addr = email', 1),
      entry('migrate', 'ADD COLUMN email_addr TEXT', 2),
      entry('backfill', 'email_addr = lower(email)', 3, 'failure'),
      entry('plan', 'DROP COLUMN email', 4),
      entry('backfill', 'email_addr = 1', 5), // names email_addr, not email
    ];
    expect(retiringStage(history, column)).toBe(history[0]);
  });

  it('takes the first verify after the latest change, not a later one', () => {
    const history = [
      entry('verify', 'email_addr = email', 1),
      entry('backfill', 'email_addr = EMAIL', 2),
      entry('verify', 'email_addr = email', 3),
      entry('verify', 'email_addr = email', 9),
    ];
    expect(retiringStage(history, column)).toBe(history[2]);
  });

  it('orders by finish time, not by list order', () => {
    const late = entry('backfill', 'email_addr = email', 6);
    const early = entry('backfill', 'email_addr = email', 2);
    expect(retiringStage([late, early], column)).toBe(late);
  });

  it('counts a restore that put the column back', () => {
    const restore = entry('restore', 'app.users_backup', 4, 'success', { columns: [{ name: 'Email' }] });
    expect(retiringStage([entry('backfill', 'email_addr = email', 1), restore], column)).toBe(restore);
    expect(retiringStage([entry('restore', 'app.users_backup', 4, 'success', { columns: [{ name: 'phone' }] })], column)).toBeNull();
  });

  it('counts every migrate for an index, and everything for the table', () => {
    const history = [entry('backfill', 'x = 1', 1), entry('migrate', 'ADD COLUMN y INT', 2), entry('backfill', 'z = 2', 3)];
    expect(retiringStage(history, { kind: 'index', index: 'idx_x' })).toBe(history[1]);
    expect(retiringStage(history, { kind: 'table' })).toBe(history[2]);
    expect(retiringStage([], { kind: 'table' })).toBeNull();
  });
});

describe('soakCheck', () => {
  const drop = { kind: 'column' as const, columns: ['email'] };
  const history = [entry('migrate', 'ADD COLUMN email_addr TEXT, DROP INDEX email', 0), entry('backfill', 'email_addr = email', 0)];

  it('passes without a stage to wait for', () => {
    expect(soakCheck('app.users', [], drop, DEFAULT_MIN_SOAK_MS, T0)).toEqual({
      check: {
        name: 'soak',
        ok: true,
        message: 'the history of app.users has no migrate, backfill, verify or restore of what goes: shadowcut never changed it, no soak to wait for',
      },
      record: { minSoakMs: DEFAULT_MIN_SOAK_MS, since: null, endsAt: null, overridden: false },
    });
  });

  it('fails inside the soak, saying when it ends', () => {
    const { check, record } = soakCheck('app.users', history, drop, DEFAULT_MIN_SOAK_MS, T0 + 2 * DAY);
    expect(check).toEqual({
      name: 'soak',
      ok: false,
      message:
        'inside the soak: backfill "email_addr = email" finished 2024-01-01T00:00:00.000Z (2d ago), and --min-soak 7d ends 2024-01-08T00:00:00.000Z; ' +
        'contract then, or give --min-soak 0 to go ahead now (recorded in the history)',
    });
    expect(record).toEqual({
      minSoakMs: DEFAULT_MIN_SOAK_MS,
      since: { command: 'backfill', stage: 'email_addr = email', finishedAt: '2024-01-01T00:00:00.000Z' },
      endsAt: '2024-01-08T00:00:00.000Z',
      overridden: false,
    });
  });

  it('passes once the soak is over, at its very end included', () => {
    const { check } = soakCheck('app.users', history, drop, DEFAULT_MIN_SOAK_MS, T0 + 7 * DAY);
    expect(check).toEqual({ name: 'soak', ok: true, message: 'backfill "email_addr = email" finished 2024-01-01T00:00:00.000Z (7d ago): the 7d soak is over' });
    expect(soakCheck('app.users', history, drop, DEFAULT_MIN_SOAK_MS, T0 + 7 * DAY - 1).check.ok).toBe(false);
  });

  it('lets --min-soak 0 go ahead inside the default soak, and records the override', () => {
    const { check, record } = soakCheck('app.users', history, drop, 0, T0 + 3 * DAY);
    expect(check).toEqual({
      name: 'soak',
      ok: true,
      message:
        'overridden by --min-soak 0: backfill "email_addr = email" finished 2024-01-01T00:00:00.000Z (3d ago); the default soak would end 2024-01-08T00:00:00.000Z',
    });
    expect(record).toMatchObject({ minSoakMs: 0, endsAt: '2024-01-08T00:00:00.000Z', overridden: true });
  });

  it('records no override for --min-soak 0 after the default soak', () => {
    const { check, record } = soakCheck('app.users', history, drop, 0, T0 + 8 * DAY);
    expect(check.message).toBe('backfill "email_addr = email" finished 2024-01-01T00:00:00.000Z (8d ago): the 0s soak is over');
    expect(record.overridden).toBe(false);
    expect(record.endsAt).toBe('2024-01-01T00:00:00.000Z');
  });
});
