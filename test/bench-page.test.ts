import { describe, expect, it } from 'vitest';
import type { LoadStats } from '../bench/load.js';
import { benchPage } from '../bench/page.js';
import type { BenchReport, RunResult } from '../bench/report.js';

function load(p99: number, seconds: number, slowest: LoadStats['slowest'] = []): LoadStats {
  const perSecond = Array.from({ length: seconds }, (_, s) => ({ s, ops: 200, p50Ms: 2, p99Ms: p99, maxMs: p99 * 2 }));
  const op = { ops: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
  return {
    seconds,
    offered: 200 * seconds,
    ops: 200 * seconds,
    errors: 0,
    errorCodes: {},
    p50Ms: 2,
    p90Ms: 3,
    p99Ms: p99,
    p999Ms: p99,
    maxMs: Math.max(p99 * 2, ...slowest.map((o) => o.ms)),
    byOp: { insert: op, update: op, delete: op },
    eventLoopDelayP99Ms: 0,
    eventLoopDelayMaxMs: 0,
    slowest,
    perSecond,
  };
}

function run(tool: string, wallS: number, stats: LoadStats): RunResult {
  return {
    tool,
    setting: '',
    mode: 'load',
    round: 1,
    workload: 'wide',
    rows: 100_000,
    alters: true,
    ok: true,
    wallS,
    rowsPerS: 100_000 / wallS,
    seedS: 1,
    loadavg: '',
    load: stats,
    details: {},
  };
}

describe("the bench's page", () => {
  it("draws each tool's writers on one time axis, with their stalls, wall times and the targets", () => {
    const table = { workload: 'wide', table: 'bench_wide', rows: 100_000, columns: 15, alter: 'ADD COLUMN x INT' };
    const report: BenchReport = {
      startedAt: '2026-11-24T12:00:00.000Z',
      finishedAt: '2026-11-24T12:10:00.000Z',
      command: 'npm run bench',
      options: {},
      machine: { cpus: 2 },
      engines: [
        {
          engine: 'mysql',
          server: 'MariaDB 10.11',
          replica: true,
          tables: { idle: table, load: table },
          settings: [''],
          reference: 'pt-osc',
          peers: ['pt-osc'],
          tools: [],
          baseline: load(4, 5),
          runs: [run('shadowcut', 19.2, load(50, 20)), run('pt-osc', 10.3, load(640, 11, [{ atS: 4.2, ms: 690, op: 'update' }]))],
        },
      ],
      targets: { mysql: [{ text: 'under load, wall time <= 1.0x pt-osc', pass: false, measured: '19.2 s vs 10.3 s = 1.86x' }] },
    };
    const html = benchPage(report);
    // One axis for all: every chart runs to the longest run.
    for (const id of ['mysql-baseline', 'mysql-shadowcut', 'mysql-pt-osc']) expect(html).toMatch(new RegExp(`data-chart="${id}" data-points="\\d+"`));
    expect(html).toMatch(/data-chart="mysql-shadowcut" data-points="20" data-max="50"/);
    expect(html).toContain('update waited 690 ms');
    expect(html).toContain('done: 10.3 s');
    expect(html).toMatch(/data-tool="shadowcut" data-wall="19.20">.*1\.86x pt-osc/s);
    expect(html).toContain('<strong>FAIL</strong> under load, wall time &#60;= 1.0x pt-osc: 19.2 s vs 10.3 s = 1.86x');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });
});
