import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeReport, type Report } from '../src/operator/report.js';
import { RunState } from '../src/core/run/run-state.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-report-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ALTER = 'ADD COLUMN `note` TEXT, ADD INDEX `by_note` (`note`(10))';

/** A run as the runner leaves it: a postponed cut-over (verified twice), throttled by lag and by the operator. */
const OLD_READER = {
  session: '4711',
  transaction: '4711/421',
  user: 'report',
  client: '10.0.0.7',
  since: '2025-03-01 02:59:00',
  state: 'Sleep',
  query: null,
  outcome: 'ended' as const,
};

function finishedRun(): RunState {
  const state = new RunState(
    { chunkTimeMs: 100, maxLagMs: 1500, maxLoad: {}, criticalLoad: {}, maxRowsPerSec: 0, niceRatio: 0, maxRedoFill: 0, maxWriterSlowdown: 0 },
    { table: 'shop.orders', alter: ALTER, engine: 'mysql' },
  );
  Object.assign(state.status, {
    startedAt: '2025-03-01T01:00:00.000Z',
    phase: 'done',
    state: 'done',
    rowsCopied: 1_000_000,
    rowsEstimated: 990_000,
    changesApplied: 5321,
    capture: 'trigger',
    lagMs: 200,
    maxLagSeenMs: 2400,
    throttledMs: { replica: 90_500, paused: 4_000 },
    cutoverAttempts: 2,
    cutoverLockedMs: 37,
    timeline: [
      { event: 'start', at: '2025-03-01T01:00:00.000Z' },
      { event: 'copy done', at: '2025-03-01T02:10:00.000Z' },
      { event: 'verified', at: '2025-03-01T02:15:00.000Z' },
      { event: 'verified', at: '2025-03-01T03:00:00.000Z' },
      { event: 'cut-over', at: '2025-03-01T03:00:01.500Z' },
      { event: 'end', at: '2025-03-01T03:00:02.000Z' },
    ],
    oldSnapshots: [OLD_READER],
  });
  // Two points: one while held back by the replica, with a probe still waiting; one after.
  const start = Date.parse('2025-03-01T01:00:00.000Z');
  const waiting = state.samples.timeProbe();
  state.samples.take({ ...state.status, phase: 'copy', state: 'throttled', throttleKind: 'replica', lagMs: 2400 }, start + 1000);
  waiting();
  state.samples.take(state.status, start + 7_202_000, true);
  return state;
}

describe('writeReport', () => {
  it('writes the timeline and figures of a successful run as markdown and JSON', async () => {
    const out = path.join(dir, 'reports', 'nested');
    const files = await writeReport(
      out,
      {
        state: finishedRun(),
        result: {
          checksumRounds: 3,
          copyTimeProof: null,
          resumed: false,
          mappingProofs: [
            { rows: 2000, columns: 4, notCompared: [] },
            { rows: 1800, columns: 4, notCompared: [] },
          ],
          keysCompared: 412,
          keysComparedAtCutover: 17,
        },
      },
      'success',
    );
    expect(files).toEqual({
      markdown: path.join(out, 'shadowcut-shop.orders-20250301T010000Z.md'),
      json: path.join(out, 'shadowcut-shop.orders-20250301T010000Z.json'),
      html: path.join(out, 'shadowcut-shop.orders-20250301T010000Z.html'),
    });

    const report = JSON.parse(await readFile(files.json, 'utf8')) as Report;
    expect(report).toEqual({
      version: 1,
      table: 'shop.orders',
      alter: ALTER,
      engine: 'mysql',
      outcome: 'success',
      error: null,
      resumed: false,
      startedAt: '2025-03-01T01:00:00.000Z',
      endedAt: '2025-03-01T03:00:02.000Z',
      durationMs: 7_202_000,
      milestones: {
        start: '2025-03-01T01:00:00.000Z',
        copyDone: '2025-03-01T02:10:00.000Z',
        verified: '2025-03-01T03:00:00.000Z',
        cutover: '2025-03-01T03:00:01.500Z',
        end: '2025-03-01T03:00:02.000Z',
      },
      timeline: finishedRun().status.timeline,
      rowsCopied: 1_000_000,
      rowsEstimated: 990_000,
      changesApplied: 5321,
      capture: 'trigger',
      maxLagSeenMs: 2400,
      throttledMs: 94_500,
      throttledMsByReason: { replica: 90_500, paused: 4_000 },
      cutoverAttempts: 2,
      cutoverLockedMs: 37,
      checksumRounds: 3,
      copyTimeProof: null,
      mappingProofRows: [2000, 1800],
      keysCompared: 412,
      keysComparedAtCutover: 17,
      oldSnapshots: [OLD_READER],
      series: {
        from: '2025-03-01T01:00:00.000Z',
        maxLagMs: 1500,
        periodMs: 1000,
        samples: [
          { t: 1000, phase: 'copy', rowsCopied: 1_000_000, rowsPerSec: 0, backlog: 0, lagMs: 2400, held: 'replica', probeMs: expect.any(Number) },
          { t: 7_202_000, phase: 'done', rowsCopied: 1_000_000, rowsPerSec: 0, backlog: 0, lagMs: 200, held: null, probeMs: expect.any(Number) },
        ],
      },
    });

    const md = await readFile(files.markdown, 'utf8');
    expect(md).toContain('# shadowcut: shop.orders: success');
    expect(md).toContain('| Duration | 2 h 0 min 2 s |');
    // The ALTER quotes names with backticks: it must stay one code block.
    expect(md).toContain('```sql\n' + ALTER + '\n```');
    for (const row of [
      '| start | 2025-03-01T01:00:00.000Z | 0.0 s |',
      '| copy done | 2025-03-01T02:10:00.000Z | 1 h 10 min 0 s |',
      '| verified | 2025-03-01T02:15:00.000Z | 1 h 15 min 0 s |',
      '| verified | 2025-03-01T03:00:00.000Z | 2 h 0 min 0 s |',
      '| cut-over | 2025-03-01T03:00:01.500Z | 2 h 0 min 2 s |',
      '| end | 2025-03-01T03:00:02.000Z | 2 h 0 min 2 s |',
      '| Rows copied | 1000000 (estimated 990000) |',
      '| Changes applied | 5321 (recorded by triggers) |',
      '| Checksum rounds | 3 (the whole table) |',
      '| Column mapping proven on | 2000 + 1800 sampled row(s) |',
      '| Changed rows compared row by row | 412 (17 under the cut-over lock) |',
      '| Max replica lag seen | 2400 ms |',
      '| Time throttled | 1 min 35 s (replica 1 min 31 s, paused 4.0 s) |',
      '| Cut-over attempts | 2 |',
      '| Cut-over lock time | 37 ms |',
      '| Older snapshots at the cut-over | 4711 (report, since 2025-03-01 02:59:00): ended |',
    ]) {
      expect(md).toContain(row);
    }
  });

  it("says how long --max-rows-per-sec held the copy back to a tenth of a second, as the markdown does, not as '0 s'", async () => {
    const state = finishedRun();
    // A limit rests a fraction of a second after each chunk: a copy held to it can rest 0.4 s in all.
    state.status.throttledMs = { replica: 90_500, rate: 387, nice: 40 };
    const files = await writeReport(dir, { state }, 'success');
    const html = await readFile(files.html, 'utf8');
    expect(html).toContain('<td>Held back</td><td>replica lag 1 min 31 s, --max-rows-per-sec 0.4 s, --nice-ratio under 0.1 s</td>');
    expect(await readFile(files.markdown, 'utf8')).toContain('| Time throttled | 1 min 31 s (replica 1 min 31 s, rate 0.4 s, nice 0.0 s) |');
  });

  it('never overwrites an earlier report', async () => {
    const first = await writeReport(dir, { state: finishedRun() }, 'success');
    const second = await writeReport(dir, { state: finishedRun() }, 'failure', 'again');
    expect(second.json).toBe(first.json.replace(/\.json$/, '-2.json'));
    expect(second.markdown).toBe(first.markdown.replace(/\.md$/, '-2.md'));
    expect(JSON.parse(await readFile(first.json, 'utf8'))).toMatchObject({ outcome: 'success' });
    expect(JSON.parse(await readFile(second.json, 'utf8'))).toMatchObject({ outcome: 'failure', error: 'again' });
  });

  it('reports a failed run from its state alone, with the error and how far it got', async () => {
    const state = new RunState(
      { chunkTimeMs: 100, maxLagMs: 1500, maxLoad: {}, criticalLoad: {}, maxRowsPerSec: 0, niceRatio: 0, maxRedoFill: 0, maxWriterSlowdown: 0 },
      { table: 'public.orders', alter: 'ADD COLUMN note text', engine: 'postgres' },
    );
    state.mark('start');
    state.mark('copy done');
    Object.assign(state.status, { phase: 'cleanup', state: 'failed', rowsCopied: 10, rowsEstimated: 10, cutoverAttempts: 10 });
    const error = 'cut-over failed 10 times: lock timeout | try later';

    const before = Date.now();
    const files = await writeReport(dir, { state }, 'failure', error);
    expect(await readdir(dir)).toEqual([path.basename(files.html), path.basename(files.json), path.basename(files.markdown)].sort());

    const report = JSON.parse(await readFile(files.json, 'utf8')) as Report;
    expect(report).toMatchObject({
      table: 'public.orders',
      engine: 'postgres',
      outcome: 'failure',
      error,
      resumed: null,
      milestones: { start: state.status.timeline[0].at, copyDone: state.status.timeline[1].at, verified: null, cutover: null, end: null },
      maxLagSeenMs: null,
      throttledMs: 0,
      throttledMsByReason: {},
      cutoverAttempts: 10,
      cutoverLockedMs: null,
      checksumRounds: null,
      mappingProofRows: null,
      keysCompared: null,
      keysComparedAtCutover: null,
    });
    expect(Date.parse(report.endedAt)).toBeGreaterThanOrEqual(before - 1);

    const md = await readFile(files.markdown, 'utf8');
    expect(md).toContain('| Outcome | failure |');
    expect(md).toContain('```text\n' + error + '\n```');
    expect(md).toContain(`| Ended | ${report.endedAt} |`);
    expect(md).toContain(`| copy done | ${report.milestones.copyDone} |`);
    expect(md).toContain('| Max replica lag seen | no replica watched |');
    expect(md).toContain('| Time throttled | none |');
    expect(md).toContain('| Cut-over lock time | no cut-over |');
    expect(md).toContain('| Checksum rounds | unknown |');
  });
});

describe('a report of names and errors someone else chose', () => {
  const TABLE = 'public.<img src=x onerror=alert(1)>|x';
  const ALTER_TEXT = "ADD COLUMN note text DEFAULT '<script>alert(1)</script>'";
  const ERROR = 'cannot connect to postgres://app:s3cret@db.example:5432/shop?password=hunter2: <b>timeout</b>';

  /** The markdown outside its fenced code blocks, where a renderer reads HTML. */
  const outsideFences = (md: string) => md.replace(/^(`{3,})[^\n]*\n[\s\S]*?\n\1$/gm, '');

  it("keeps their markup as text, redacts URLs in the error as stderr does, and is readable by the run's user alone", async () => {
    const state = new RunState(
      { chunkTimeMs: 100, maxLagMs: 1500, maxLoad: {}, criticalLoad: {}, maxRowsPerSec: 0, niceRatio: 0, maxRedoFill: 0, maxWriterSlowdown: 0 },
      { table: TABLE, alter: ALTER_TEXT, engine: 'postgres' },
    );
    state.mark('start');
    Object.assign(state.status, { phase: 'copy', state: 'failed' });
    const out = path.join(dir, 'made', 'here');
    const files = await writeReport(out, { state }, 'failure', ERROR);

    for (const file of Object.values(files)) expect((await stat(file)).mode & 0o777, file).toBe(0o600);
    expect((await stat(out)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(dir, 'made'))).mode & 0o777).toBe(0o700);

    const json = JSON.parse(await readFile(files.json, 'utf8')) as Report;
    expect(json.error).toBe('cannot connect to postgres://app:***@db.example:5432/shop?password=*** <b>timeout</b>');
    for (const file of Object.values(files)) {
      const text = await readFile(file, 'utf8');
      expect(text, file).not.toContain('s3cret');
      expect(text, file).not.toContain('hunter2');
    }

    const md = await readFile(files.markdown, 'utf8');
    expect(md).toContain('# shadowcut: public.&lt;img src=x onerror=alert(1)&gt;&#124;x: failure');
    expect(md).toContain('| Table | public.&lt;img src=x onerror=alert(1)&gt;&#124;x |');
    // Each table row still has its two cells: the pipe in the name did not make a third.
    expect(
      md
        .split('\n')
        .find((l) => l.startsWith('| Table |'))!
        .split('|'),
    ).toHaveLength(4);
    expect(md).toContain('```sql\n' + ALTER_TEXT + '\n```');
    expect(outsideFences(md)).not.toMatch(/[<>]/);

    const html = await readFile(files.html, 'utf8');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<b>timeout');
    expect(html).toMatch(/&#60;img src=x onerror=alert\(1\)&#62;/);
  });
});

describe('the samples the charts draw', () => {
  it('stay within a fixed size on a long run, keeping each merged period its worst', () => {
    const state = finishedRun();
    const samples = new RunState(state.settings, { table: 't', alter: 'a', engine: 'mysql' }).samples;
    const status = { ...state.status, startedAt: '2025-03-01T00:00:00.000Z', phase: 'copy', state: 'running', throttleKind: null, backlog: 5, lagMs: 100 };
    const start = Date.parse(status.startedAt);
    const seconds = 24 * 3600;
    for (let t = 1; t <= seconds; t++) {
      const stalled = t === 40_000;
      if (stalled) samples.timeProbe()();
      samples.take(
        { ...status, rowsCopied: t, backlog: stalled ? 9_999 : 5, state: t === 50_000 ? 'throttled' : 'running', throttleKind: 'load' },
        start + t * 1000,
      );
    }
    const { periodMs, samples: points } = samples.series();
    expect(points.length).toBeLessThanOrEqual(1200);
    expect(points.length).toBeGreaterThan(600);
    expect(periodMs).toBeGreaterThanOrEqual(seconds / 1200);
    expect(points[points.length - 1].rowsCopied).toBeGreaterThan(seconds - periodMs / 1000 - 1);
    // The one-second stall and the one-second hold survive every merge.
    expect(points.filter((p) => p.backlog === 9_999)).toHaveLength(1);
    expect(points.filter((p) => p.probeMs !== null)).toHaveLength(1);
    expect(points.filter((p) => p.held === 'load')).toHaveLength(1);
  });
});
