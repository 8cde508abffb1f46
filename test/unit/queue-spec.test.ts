// parseAdd / specProblem (src/core/queue/spec.ts): what `queue add` refuses, and what a runner
// refuses again in a row written by hand.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/core/engine/errors.js';
import { optionValue, optionValues, parseAdd, specProblem } from '../../src/core/queue/spec.js';
import type { QueueSpec } from '../../src/core/engine/ports/queue.js';

/** A spec as a row may hold it: `over` may put anything in any field. */
const spec = (over: Record<string, unknown>): QueueSpec => ({
  stage: 'migrate',
  table: 'app.t',
  args: ['--alter', 'ADD COLUMN x INT'],
  addedBy: 'me@host',
  ...over,
});

describe('parseAdd', () => {
  it("splits the queue's own options from the stage's, which keep their order", () => {
    const add = parseAdd([
      '--url=mysql://h/app',
      '--table',
      't',
      '--alter',
      'ADD COLUMN x INT',
      '--window',
      '01:00-05:00',
      '--tz=UTC',
      '--after',
      '3',
      '--chunk-time-ms=500',
      '--json',
    ]);
    expect(add.url).toBe('mysql://h/app');
    expect(add.urlFile).toBeUndefined();
    expect(add.json).toBe(true);
    const { addedBy, ...rest } = add.spec;
    expect(rest).toEqual({
      stage: 'migrate',
      table: 't',
      args: ['--alter', 'ADD COLUMN x INT', '--chunk-time-ms=500'],
      window: '01:00-05:00',
      tz: 'UTC',
      after: 3,
    });
    expect(addedBy).toMatch(/^.+@.+$/);
  });

  it('keeps flags and further tables of a set', () => {
    const add = parseAdd(['--table', 'a', '--table=b', '--alter', 'X', '--alter=Y', '--postpone', '--postpone-cutover']);
    expect(add.json).toBe(false);
    expect(add.spec).toMatchObject({ table: 'a', set: ['b'], args: ['--alter', 'X', '--alter=Y'], postponed: true, postponeCutover: true });
  });

  it("stores a fleet's targets file absolute: the runner reads it from its own working directory (issue 68, item 5)", () => {
    for (const given of [['--targets', 'fleet/targets'], ['--targets=fleet/targets']]) {
      const add = parseAdd(['--table', 't', '--alter', 'X', ...given]);
      expect(add.spec.args).toEqual(['--alter', 'X', '--targets', path.resolve('fleet/targets')]);
    }
  });

  it.each([
    [['--table', 't', '--execute'], 'queue add: --execute is not for a queued entry: the runner executes every entry'],
    [
      ['--table', 't', '--replica=mysql://u:pw@r/app'],
      'queue add: --replica is not for a queued entry: give replicas to "queue run" (their URLs must not be stored in the queue)',
    ],
    [
      ['--table', 't', '--hooks-dir', '/tmp/h'],
      'queue add: --hooks-dir is not for a queued entry: give it to "queue run": hooks run programs on the runner\'s host',
    ],
    [['--alter', 'X'], 'queue add: --table is required'],
    [['--table', 't', '--window'], '--window needs a value'],
    [['--table', 't', '--after', 'abc'], "queue add: --after abc is not an entry's id"],
    [['--table', 't', '--after', '0'], "queue add: --after 0 is not an entry's id"],
    [['--table', 't', '--stage', 'drop'], 'queue add: --stage drop: one of migrate, backfill, verify, contract'],
    [['--table', 't', '--tz', 'UTC'], 'queue add: --tz is the time zone of --window; give the window too'],
    [['--table', 't', '--window', '5-6'], 'queue add: --window 5-6 is not HH:MM-HH:MM (local time), e.g. 01:00-05:00, or several separated by commas'],
    [['--table', 't', '--window', '01:00-02:00', '--tz', 'Nowhere/City'], 'queue add: --tz Nowhere/City: not a time zone (an IANA name, e.g. Europe/Berlin)'],
    [['--table', 't', '--stage', 'verify', '--postpone-cutover'], 'queue add: --postpone-cutover is for a migrate entry'],
    [['--table', 't', '--', '--alter', 'X'], 'queue add: "--" ends the options: the stage takes none after it'],
    [['--table', '-t'], 'queue add: --table -t is not a table'],
    [['--table', 'a', '--table', 'b', '--alter', 'X'], 'queue add: 2 tables and 1 --alter: give each --table its own --alter, in the same order'],
    [['--table', 'a', '--table', 'a', '--alter', 'X', '--alter', 'Y'], 'queue add: a table is named twice in a, a'],
    [
      ['--stage', 'backfill', '--table', 'a', '--table', 'b', '--set', 'x = 1'],
      'queue add: several --table are for a migrate entry (one cut-over swaps them all); a backfill entry takes one',
    ],
  ])('refuses %j', (argv, message) => {
    expect(() => parseAdd(argv)).toThrow(UserError);
    expect(() => parseAdd(argv)).toThrow(message);
  });
});

describe('specProblem (rows written by hand)', () => {
  it('passes a spec add would make', () => {
    expect(specProblem(spec({}))).toBeNull();
    expect(specProblem(spec({ set: ['app.u'], args: ['--alter', 'X', '--alter', 'Y'], window: '22:00-02:00', tz: 'UTC', after: 1 }))).toBeNull();
  });

  it.each([
    [{ unproven: 'the seal does not match' }, 'the seal does not match'],
    [{ stage: 'rm' }, '--stage rm: one of migrate, backfill, verify, contract'],
    [{ table: '' }, '--table  is not a table'],
    [{ table: 42 }, '--table 42 is not a table'],
    [{ args: '--alter X' }, 'the stage options are not a list of words'],
    [{ args: ['--alter', 1] }, 'the stage options are not a list of words'],
    [{ args: ['--table=other'] }, "--table is the queue's, not the stage's"],
    [{ args: ['--url', 'mysql://x'] }, "--url is the queue's, not the stage's"],
    [{ args: ['--throttle-query=SELECT 1'] }, '--throttle-query is not for a queued entry: give it to "queue run"'],
    [{ set: [] }, 'the further tables of the entry are not a list of tables'],
    [{ set: ['--x'] }, '--table --x is not a table'],
    [{ after: 1.5 }, "--after 1.5 is not an entry's id"],
    [{ after: -2 }, "--after -2 is not an entry's id"],
    [{ window: '03:00-03:00' }, '--window 03:00-03:00 never opens: its start and its end are the same'],
  ])('refuses %j', (over, message) => {
    expect(specProblem(spec(over))).toBe(message);
  });
});

describe('optionValue(s)', () => {
  it('reads values given either way, in order, and skips a name with no value', () => {
    const args = ['--alter', 'A', '--chunk-time-ms=5', '--alter=B', '--alter'];
    expect(optionValues(args, '--alter')).toEqual(['A', 'B']);
    expect(optionValue(args, '--chunk-time-ms')).toBe('5');
    expect(optionValue(args, '--nice-ratio')).toBeUndefined();
  });
});
