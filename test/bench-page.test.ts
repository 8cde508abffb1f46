import { describe, expect, it } from 'vitest';
import type { LoadStats } from '../bench/load.js';
import { checkDurability, durabilityOf, DurabilityMismatch, type ServerSettings } from '../bench/durability.js';
import { benchPage } from '../bench/page.js';
import { formatReport, type BenchReport, type RunResult } from '../bench/report.js';

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

  it('says what the servers were (durability as read, the disk) and what each run wrote against the floor, relaxed marked on every page', () => {
    const table = { workload: 'sbtest', table: 'sbtest', rows: 100_000, columns: 4, alter: 'ADD COLUMN x INT' };
    const idle = (tool: string, wallS: number, redo: number, binlog: number): RunResult => ({
      ...run(tool, wallS, load(1, 1)),
      mode: 'idle',
      load: undefined,
      bytes: { redo: redo * 2 ** 20, binlog: binlog * 2 ** 20 },
    });
    const primary: ServerSettings = {
      label: 'MariaDB primary',
      engine: 'mysql',
      settings: { innodb_flush_log_at_trx_commit: '2', sync_binlog: '0', binlog: 'ON' },
      durability: 'relaxed',
    };
    const disk = {
      dir: '/tmp/x',
      filesystem: 'ext4 /dev/vda on /',
      syncedWrite: { writes: 200, bytes: 4096, medianMs: 0.37, p99Ms: 1.2 },
      sequential: { mib: 256, seconds: 1.5, mbPerS: 179 },
    };
    const report: BenchReport = {
      startedAt: '2026-11-28T12:00:00.000Z',
      finishedAt: '2026-11-28T12:10:00.000Z',
      command: 'npm run bench -- --relaxed',
      options: {},
      machine: { cpus: 2 },
      sitting: { asked: 'relaxed', servers: [primary], disks: [disk] },
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
          runs: [idle('shadowcut', 5, 39, 20), idle('floor', 1, 26, 20)],
        },
      ],
      targets: { mysql: [] },
    };
    const md = formatReport(report);
    expect(md.split('\n')[0]).toContain('[RELAXED servers: not durable figures]');
    expect(md).toContain('- MariaDB primary: innodb_flush_log_at_trx_commit=2, sync_binlog=0, binlog=ON');
    expect(md).toContain('median 0.37 ms, p99 1.20 ms over 200; sequential 179 MB/s (256 MiB written, then fdatasync)');
    expect(md).toMatch(/\| redo MiB \(x floor\) \| binlog MiB \(x floor\) \|/);
    expect(md).toMatch(/\| shadowcut .*\|\s+39\.0 \(1\.50x\) \|\s+20\.0 \(1\.00x\) \|/);
    const html = benchPage(report);
    expect(html).toMatch(/<h1>[^<]*\[RELAXED servers: not durable figures\]<\/h1>/);
    expect(html).toContain('data-durability="relaxed"');
    expect(html).toContain('<li>MariaDB primary: innodb_flush_log_at_trx_commit=2, sync_binlog=0, binlog=ON</li>');
    expect(html).toMatch(/data-bytes="mysql-shadowcut-idle-1"><td>shadowcut, idle<\/td><td>39\.0 \(1\.50x\)<\/td>/);
    expect(benchPage({ ...report, sitting: { ...report.sitting!, asked: 'durable' } })).not.toContain('RELAXED');
  });

  it('tells durable servers from relaxed ones by what they read, and refuses the wrong kind in one line', () => {
    expect(durabilityOf('mysql', { innodb_flush_log_at_trx_commit: '1', sync_binlog: '1', binlog: 'ON' })).toBe('durable');
    expect(durabilityOf('mysql', { innodb_flush_log_at_trx_commit: '1', sync_binlog: '0', binlog: 'ON' })).toBe('relaxed');
    expect(durabilityOf('mysql', { innodb_flush_log_at_trx_commit: '1', sync_binlog: '0', binlog: 'OFF' })).toBe('durable');
    expect(durabilityOf('postgres', { fsync: 'on', synchronous_commit: 'local', full_page_writes: 'on' })).toBe('durable');
    expect(durabilityOf('postgres', { fsync: 'on', synchronous_commit: 'off', full_page_writes: 'on' })).toBe('relaxed');
    const standby: ServerSettings = {
      label: 'PostgreSQL standby',
      engine: 'postgres',
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', wal_level: 'logical' },
      durability: 'relaxed',
    };
    const refusal = () => checkDurability([standby], 'durable', 'stop them');
    expect(refusal).toThrow(DurabilityMismatch);
    expect(refusal).toThrow(
      'asked for durable servers, but the PostgreSQL standby is relaxed (fsync=off, synchronous_commit=off, full_page_writes=off, wal_level=logical): stop them',
    );
    expect(() => checkDurability([standby], 'relaxed', '')).not.toThrow();
  });
});
