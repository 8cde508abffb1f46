import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../src/core/engine/errors.js';
import { startMetricsServer } from '../src/operator/metrics.js';
import { RunState } from '../src/core/run/run-state.js';

function runState(table = 'shop.orders'): RunState {
  return new RunState(
    { chunkTimeMs: 100, maxLagMs: 1500, maxLoad: {}, criticalLoad: {}, maxRowsPerSec: 0, niceRatio: 0, maxRedoFill: 0, maxWriterSlowdown: 0 },
    { table, alter: 'ADD COLUMN note TEXT', engine: 'mysql' },
  );
}

const servers: { close(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(state: RunState, port = 0) {
  const server = await startMetricsServer(state, port);
  servers.push(server);
  return server;
}

async function scrape(port: number): Promise<string[]> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return (await response.text()).trimEnd().split('\n');
}

/** The exposition format's rules that a scraper rejects a page for: every sample belongs to a metric announced by HELP and TYPE. */
function expectWellFormed(lines: string[]): void {
  let announced = '';
  for (const line of lines) {
    const help = line.match(/^# HELP (\w+) \S/);
    if (help) {
      announced = help[1];
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      expect(line).toMatch(new RegExp(`^# TYPE ${announced} (gauge|counter)$`));
      continue;
    }
    expect(line).toMatch(/^(\w+)\{(\w+="(?:[^"\\\n]|\\[\\"n])*",?)+\} -?[\d.e+-]+$/);
    expect(line.slice(0, line.indexOf('{'))).toBe(announced);
  }
}

describe('metrics endpoint', () => {
  it('serves progress, rates, lag, throttling and phase in the Prometheus text format', async () => {
    const state = runState();
    Object.assign(state.status, {
      phase: 'copy',
      state: 'throttled',
      rowsCopied: 250_000,
      rowsEstimated: 1_000_000,
      percent: 25,
      rowsPerSec: 12_000,
      changesApplied: 987,
      backlog: 12,
      lagMs: 2300,
      throttleReason: 'replica lag 2300 ms > 1500 ms',
      throttleKind: 'replica',
      throttledMs: { replica: 61_500, load: 2_000 },
      cutoverAttempts: 0,
    });
    const { port } = await serve(state);
    expect(port).toBeGreaterThan(0);
    const lines = await scrape(port);
    expectWellFormed(lines);
    for (const line of [
      '# HELP shadowcut_rows_copied Rows copied into the shadow table.',
      '# TYPE shadowcut_rows_copied gauge',
      'shadowcut_rows_copied{table="shop.orders"} 250000',
      'shadowcut_rows_estimated{table="shop.orders"} 1000000',
      'shadowcut_progress_ratio{table="shop.orders"} 0.25',
      'shadowcut_rows_per_second{table="shop.orders"} 12000',
      '# TYPE shadowcut_changes_applied_total counter',
      'shadowcut_changes_applied_total{table="shop.orders"} 987',
      'shadowcut_backlog_keys{table="shop.orders"} 12',
      'shadowcut_replica_lag_ms{table="shop.orders"} 2300',
      'shadowcut_throttled{table="shop.orders"} 1',
      'shadowcut_throttle_reason{table="shop.orders",reason="replica"} 1',
      '# TYPE shadowcut_throttled_seconds_total counter',
      'shadowcut_throttled_seconds_total{table="shop.orders",reason="replica"} 61.5',
      'shadowcut_throttled_seconds_total{table="shop.orders",reason="load"} 2',
      'shadowcut_phase{table="shop.orders",phase="copy"} 1',
      'shadowcut_state{table="shop.orders",state="throttled"} 1',
      'shadowcut_cutover_attempts{table="shop.orders"} 0',
    ]) {
      expect(lines).toContain(line);
    }
  });

  it('follows the live state: no lag without replicas, not throttled, a pause, then the cut-over', async () => {
    const state = runState();
    const { port } = await serve(state);
    let lines = await scrape(port);
    expectWellFormed(lines);
    expect(lines.filter((l) => l.startsWith('shadowcut_replica_lag_ms'))).toEqual([]);
    expect(lines).toContain('shadowcut_throttled{table="shop.orders"} 0');
    expect(lines.filter((l) => l.startsWith('shadowcut_throttle_reason'))).toEqual([]);
    expect(lines).toContain('shadowcut_phase{table="shop.orders",phase="checks"} 1');

    Object.assign(state.status, { phase: 'copy', state: 'paused' });
    lines = await scrape(port);
    expect(lines).toContain('shadowcut_throttled{table="shop.orders"} 1');
    expect(lines).toContain('shadowcut_throttle_reason{table="shop.orders",reason="paused"} 1');

    Object.assign(state.status, { phase: 'cutover', state: 'running', cutoverAttempts: 3 });
    lines = await scrape(port);
    expect(lines).toContain('shadowcut_phase{table="shop.orders",phase="cutover"} 1');
    expect(lines.filter((l) => l.startsWith('shadowcut_phase{'))).toHaveLength(1);
    expect(lines).toContain('shadowcut_cutover_attempts{table="shop.orders"} 3');
  });

  it('escapes label values', async () => {
    const { port } = await serve(runState('we"ird\\name'));
    const lines = await scrape(port);
    expectWellFormed(lines);
    expect(lines).toContain('shadowcut_rows_copied{table="we\\"ird\\\\name"} 0');
  });

  it('serves the live page at /, answers 404 elsewhere and 405 to anything but GET', async () => {
    const { port } = await serve(runState());
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toMatch(/<main data-outcome="running"/);
    expect((await fetch(`http://127.0.0.1:${port}/x`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics/x`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics?name[]=x`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('answers only requests addressed to a loopback name: a DNS-rebinding page gets 421 and no data', async () => {
    const { port } = await serve(runState('shop.secret_orders'));
    const get = (path: string, host: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1.evil.example:${port}`, `localhost.evil.example`]) {
      for (const path of ['/', '/metrics']) {
        const answer = await get(path, host);
        expect(answer.status, `${host} ${path}`).toBe(421);
        expect(answer.body).not.toContain('secret_orders');
      }
    }
    // What a browser or a scraper on this machine sends, through a tunnel's other port too.
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'LOCALHOST:9999', '127.0.0.1']) {
      const answer = await get('/', host);
      expect(answer.status, host).toBe(200);
      expect(answer.body).toContain('secret_orders');
    }
  });

  it('closes promptly while a scraper holds a keep-alive connection or is stuck mid-request', async () => {
    const server = await startMetricsServer(runState(), 0);
    const agent = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      const req = request({ port: server.port, host: '127.0.0.1', path: '/metrics', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject).end();
    });
    const stuck = connect(server.port, '127.0.0.1');
    await new Promise((resolve) => stuck.on('connect', resolve));
    stuck.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(1000);
    agent.destroy();
    stuck.destroy();
  });

  it('refuses a port in use with a UserError', async () => {
    const { port } = await serve(runState());
    await expect(startMetricsServer(runState(), port)).rejects.toThrow(UserError);
    await expect(startMetricsServer(runState(), port)).rejects.toThrow(`--metrics-port ${port}: cannot listen on 127.0.0.1:${port} (EADDRINUSE)`);
  });
});
