import { execFile, spawn } from 'node:child_process';
import { lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultSocketPath } from '../src/operator/control-dir.js';
import {
  sendControl,
  startControlServer,
  type ControlAnswer,
  type ControlRequest,
  type ControlServer,
  type RunningAnswer as Running,
} from '../src/operator/control-server.js';
import { AbortedError, UserError } from '../src/core/engine/errors.js';
import type { RunState } from '../src/core/run/run-state.js';
import { runState, waitFor } from './support/run.js';
import { migrate, type MigrateResult } from '../src/core/migrate/runner.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool, differences, mysqlUrl, schemaOf } from './support/mysql.js';

const cliPath = fileURLToPath(new URL('../dist/bin/shadowcut.js', import.meta.url));

// Sockets live in a private control directory (inherited by the CLI), so runs of other checkouts never match.
let tmp: string;
const outerDir = process.env.SHADOWCUT_CONTROL_DIR;
const servers: ControlServer[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ctl-test-'));
  process.env.SHADOWCUT_CONTROL_DIR = tmp;
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  if (outerDir === undefined) delete process.env.SHADOWCUT_CONTROL_DIR;
  else process.env.SHADOWCUT_CONTROL_DIR = outerDir;
  await rm(tmp, { recursive: true, force: true });
});

function newState(table: string, maxRowsPerSec = 0): RunState {
  return runState(table, 'ADD COLUMN note INT', 'mysql', { chunkTimeMs: 5, maxRowsPerSec });
}

async function serve(state: RunState, options: { table: string; socketPath?: string; port?: number; idleTimeoutMs?: number }): Promise<ControlServer> {
  const server = await startControlServer(state, options);
  servers.push(server);
  return server;
}

async function send(socketPath: string, request: ControlRequest): Promise<ControlAnswer> {
  return sendControl({ socketPath }, request);
}

/** The built CLI, run without blocking this process: its control server must keep answering. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], { timeout: 30_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function cliStatus(table: string): Promise<Running> {
  const r = await cli('status', '--table', table, '--json');
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Running;
}

const sleep = (ms: number) => new Promise<null>((resolve) => setTimeout(() => resolve(null), ms));

/** Polls until `check` holds; bounded so a broken run fails the test instead of hanging it. */
async function until<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  let value: T | null | undefined | false = null;
  await waitFor(what, async () => Boolean((value = await check())), null, timeoutMs);
  return value as T;
}

/** The outcome of a run (its error, if it failed), waited for within bounds. */
async function ended<T>(run: Promise<T>): Promise<T> {
  let value: T | null = null;
  void run.then((v) => (value = v));
  return until('the run to end', () => Promise.resolve(value));
}

/**
 * Raw protocol access: writes `text` and collects answer lines until `expected` have come or the
 * server closes the connection (bounded: a server that does neither is reported as not closing).
 */
function converse(where: string | { port: number }, text: string, expected = Infinity): Promise<{ lines: string[]; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = typeof where === 'string' ? net.createConnection(where) : net.createConnection({ host: '127.0.0.1', port: where.port });
    let received = '';
    const lines = () => received.split('\n').filter(Boolean);
    const finish = (closedByServer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ lines: lines(), closedByServer });
    };
    const timer = setTimeout(() => finish(false), 10_000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(text));
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (lines().length >= expected && received.endsWith('\n')) finish(false);
    });
    socket.on('error', reject);
    socket.on('close', () => finish(true));
  });
}

describe('defaultSocketPath', () => {
  it('names the table in SHADOWCUT_CONTROL_DIR, hashing names a path cannot hold', () => {
    expect(defaultSocketPath('shop.orders')).toBe(path.join(tmp, 'shadowcut-shop.orders.sock'));
    const odd = [defaultSocketPath('shop.we/ird'), defaultSocketPath('shop.we_ird'), defaultSocketPath(`${'d'.repeat(64)}.${'t'.repeat(64)}`)];
    expect(new Set(odd).size).toBe(3);
    for (const p of odd) {
      expect(path.dirname(p)).toBe(tmp);
      expect(path.basename(p)).toMatch(/^shadowcut-[A-Za-z0-9_.-]+\.sock$/);
      expect(p.length).toBeLessThanOrEqual(103);
    }
  });

  it("is in the user's own ~/.shadowcut/control when SHADOWCUT_CONTROL_DIR is empty (and no XDG_RUNTIME_DIR)", () => {
    const runtime = process.env.XDG_RUNTIME_DIR;
    process.env.SHADOWCUT_CONTROL_DIR = '';
    delete process.env.XDG_RUNTIME_DIR;
    try {
      expect(path.dirname(defaultSocketPath('shop.orders'))).toBe(path.join(realpathSync(os.homedir()), '.shadowcut', 'control'));
    } finally {
      process.env.SHADOWCUT_CONTROL_DIR = tmp;
      if (runtime !== undefined) process.env.XDG_RUNTIME_DIR = runtime;
    }
  });
});

describe('control server', () => {
  it('answers status and turns commands into run state', async () => {
    const state = newState('shop.orders');
    const { socketPath } = await serve(state, { table: 'shop.orders' });

    const status = await send(socketPath, { command: 'status' });
    expect(status).toMatchObject({ ok: true, table: 'shop.orders', paused: false, cutoverRequested: false, status: { phase: 'checks' } });

    expect(await send(socketPath, { command: 'pause' })).toMatchObject({ ok: true, paused: true });
    expect(state.paused).toBe(true);
    await send(socketPath, { command: 'resume' });
    expect(state.paused).toBe(false);
    expect(await send(socketPath, { command: 'cutover' })).toMatchObject({ ok: true, cutoverRequested: true });
    expect(await send(socketPath, { command: 'set', name: 'max-lag-ms', value: '3000' })).toMatchObject({ ok: true, settings: { maxLagMs: 3000 } });
    await send(socketPath, { command: 'set', name: 'max-load', value: 'Threads_running=25' });
    expect(state.settings.maxLoad).toEqual({ Threads_running: 25 });
    await send(socketPath, { command: 'set', name: 'max-rows-per-sec', value: '0' });
    expect(state.settings.maxRowsPerSec).toBe(0);

    await send(socketPath, { command: 'abort' });
    expect(state.abortReason).toBe('aborted by operator');
    await send(socketPath, { command: 'abort', reason: 'second thoughts' });
    expect(state.abortReason).toBe('aborted by operator');
  });

  it('takes revert and complete only in a revert window: before the cut-over there is nothing to go back to', async () => {
    const state = newState('shop.window');
    const { socketPath } = await serve(state, { table: 'shop.window' });
    const early = await send(socketPath, { command: 'revert' });
    expect(early).toMatchObject({ ok: false });
    expect((early as { error: string }).error).toMatch(/^shop\.window is not in a revert window \(state: running\)/);
    expect((await send(socketPath, { command: 'complete' })).ok).toBe(false);
    expect([state.revertRequested, state.completeRequested]).toEqual([false, false]);
    state.status.state = 'revert-window';
    expect((await send(socketPath, { command: 'revert' })).ok).toBe(true);
    expect((await send(socketPath, { command: 'complete' })).ok).toBe(true);
    expect([state.revertRequested, state.completeRequested]).toEqual([true, true]);
  });

  it('refuses bad requests with a reason and keeps serving the same connection', async () => {
    const state = newState('shop.orders');
    const { socketPath } = await serve(state, { table: 'shop.orders' });
    const before = structuredClone(state.settings);
    const requests = [
      '{"command":"explode"}',
      '{"command":"set","name":"max-lag-ms"}',
      '{"command":"set","name":"max-lag-ms","value":"-1"}',
      '{"command":"set","name":"max-rows-per-sec","value":"fast"}',
      '{"command":"set","name":"max-load","value":"Threads_running"}',
      '{"command":"set","name":"speed","value":"1"}',
      '{"command":"abort","reason":42}',
      '{"command":"status"}',
    ];
    // One write, several lines: the server must split them itself.
    const { lines } = await converse(socketPath, requests.join('\n') + '\n', requests.length);
    const answers = lines.map((l) => JSON.parse(l) as ControlAnswer);
    expect(answers.map((a) => a.ok)).toEqual([...requests.slice(0, -1).map(() => false), true]);
    for (const a of answers.slice(0, -1)) expect(a.ok === false && a.error.length).toBeGreaterThan(0);
    expect(state.settings).toEqual(before);
    expect(state.abortReason).toBeNull();
  });

  it('closes the connection at the first line that is not a JSON object, reading nothing after it', async () => {
    const state = newState('shop.orders');
    const { socketPath } = await serve(state, { table: 'shop.orders' });
    for (const first of ['not json', '[1,2]', '"abort"']) {
      const { lines, closedByServer } = await converse(socketPath, `${first}\n{"command":"abort"}\n`);
      expect(closedByServer).toBe(true);
      expect(lines.map((l) => JSON.parse(l) as ControlAnswer)).toEqual([{ ok: false, error: expect.stringContaining('not a JSON object') }]);
    }
    expect(state.abortReason).toBeNull();
    expect(await send(socketPath, { command: 'status' })).toMatchObject({ ok: true });
  });

  it('cuts off an over-long request line and idle clients, and goes on serving', async () => {
    const { socketPath } = await serve(newState('shop.orders'), { table: 'shop.orders', idleTimeoutMs: 300 });
    const long = await converse(socketPath, 'x'.repeat(70 * 1024));
    expect(long.closedByServer).toBe(true);
    expect(JSON.parse(long.lines[0])).toMatchObject({ ok: false, error: expect.stringContaining('longer than') });

    const idle = await converse(socketPath, '');
    expect(idle).toEqual({ lines: [], closedByServer: true });

    expect(await send(socketPath, { command: 'status' })).toMatchObject({ ok: true });
  });

  it('replaces the socket of a killed run, and refuses to start beside a live one', async () => {
    const socketPath = defaultSocketPath('shop.orders');
    // A run killed with -9 leaves its socket file behind, with nobody listening.
    const dead = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('up'))", socketPath]);
    await new Promise((resolve) => dead.stdout.once('data', resolve));
    dead.kill('SIGKILL');
    await new Promise((resolve) => dead.once('exit', resolve));
    expect(await readdir(tmp)).toContain(path.basename(socketPath));

    const live = await serve(newState('shop.orders'), { table: 'shop.orders' });
    expect(live.socketPath).toBe(socketPath);
    const second = startControlServer(newState('shop.orders'), { table: 'shop.orders' });
    await expect(second).rejects.toThrow(UserError);
    await expect(second).rejects.toThrow(/a migration of shop.orders is already running/);
    expect(await send(socketPath, { command: 'status' })).toMatchObject({ ok: true });

    await live.close();
    expect(await readdir(tmp)).not.toContain(path.basename(socketPath));
  });

  it('leaves a file that is not a socket alone', async () => {
    const file = path.join(tmp, 'not-a-socket');
    await writeFile(file, 'keep me');
    await expect(startControlServer(newState('t'), { table: 't', socketPath: file })).rejects.toThrow(/is not a socket/);
    expect(await readdir(tmp)).toContain('not-a-socket');
    await rm(file);
  });

  it('also listens on a TCP port of 127.0.0.1 when asked, obeying only requests that carry the token of its 0600 file', async () => {
    const state = newState('shop.orders');
    const server = await serve(state, { table: 'shop.orders', port: 0 });
    expect(server.port).toBeGreaterThan(0);
    expect(server.tokenFile).toBe(`${server.socketPath}.token`);
    expect((await stat(server.tokenFile!)).mode & 0o777).toBe(0o600);
    const token = (await readFile(server.tokenFile!, 'utf8')).trim();
    expect(token).toMatch(/^[0-9a-f]{64}$/);

    for (const wrong of [undefined, '', 'x'.repeat(64), token.slice(1), `${token}0`]) {
      const { lines, closedByServer } = await converse({ port: server.port! }, JSON.stringify({ command: 'pause', token: wrong }) + '\n{"command":"pause"}\n');
      expect(closedByServer).toBe(true);
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0])).toMatchObject({
        ok: false,
        error: expect.stringMatching(/^the request carries (no|a wrong) token: the control port obeys only/),
      });
    }
    expect(state.paused).toBe(false);
    expect(await sendControl({ port: server.port! }, { command: 'pause' })).toMatchObject({ ok: false });
    expect(state.paused).toBe(false);

    expect(await sendControl({ port: server.port!, token }, { command: 'pause' })).toMatchObject({ ok: true, paused: true, port: server.port });
    expect(state.paused).toBe(true);
    // The socket's file mode is its check: no token needed there.
    expect(await send(server.socketPath, { command: 'resume' })).toMatchObject({ ok: true, paused: false });

    await server.close();
    await expect(stat(server.tokenFile!)).rejects.toThrow(/ENOENT/);
  });

  it('does nothing a web page asks: an HTTP POST with a text/plain body is cut off at its request line', async () => {
    const state = newState('shop.orders');
    const server = await serve(state, { table: 'shop.orders', port: 0 });
    // What fetch('http://127.0.0.1:port/', {method: 'POST', mode: 'no-cors', body}) sends, no preflight asked.
    const post = (body: string) =>
      `POST / HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ${body.length}\r\n` +
      `Origin: http://evil.example\r\n\r\n${body}`;
    const plain = await converse({ port: server.port! }, post('{"command":"abort"}\n'));
    expect(state.abortReason).toBeNull();
    expect(plain).toEqual({ lines: [], closedByServer: true });
    // Even a body that carries the token is never read.
    const token = (await readFile(server.tokenFile!, 'utf8')).trim();
    expect(await converse({ port: server.port! }, post(`{"command":"abort","token":"${token}"}\n`))).toEqual({ lines: [], closedByServer: true });
    // On the socket too: the line is not a request.
    expect((await converse(server.socketPath, 'POST / HTTP/1.1\r\n\r\n{"command":"abort"}\n')).lines).toEqual([]);
    expect(state.abortReason).toBeNull();
    expect(state.status.state).toBe('running');
  });

  it('refuses to write its token through a file another process put at its path', async () => {
    const socketPath = path.join(tmp, 'planted.sock');
    await symlink(path.join(tmp, 'elsewhere'), `${socketPath}.token`);
    const server = await serve(newState('shop.planted'), { table: 'shop.planted', socketPath, port: 0 });
    // A link of ours is replaced (as a killed run's token is); nothing was written where it pointed.
    expect((await lstat(server.tokenFile!)).isFile()).toBe(true);
    await expect(stat(path.join(tmp, 'elsewhere'))).rejects.toThrow(/ENOENT/);
  });
});

describe('control commands', () => {
  it('find a run by its short or qualified name and print its status', async () => {
    const state = newState('shop.orders');
    state.status.phase = 'copy';
    state.status.rowsCopied = 1500;
    state.status.rowsEstimated = 6000;
    state.status.percent = 25;
    await serve(state, { table: 'shop.orders' });

    const human = await cli('status', '--table', 'orders');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/phase\s+copy/);
    expect(human.stdout).toContain('1,500 / 6,000 copied (25.0%)');

    expect(await cli('pause', '--table', 'shop.orders')).toMatchObject({ code: 0, stderr: '' });
    expect(state.paused).toBe(true);
    expect((await cliStatus('orders')).paused).toBe(true);
    expect((await cli('status', '--table', 'orders')).stdout).toContain('paused by operator');
  });

  it('refuse a short name that matches several runs, naming them', async () => {
    await serve(newState('shop.orders'), { table: 'shop.orders' });
    await serve(newState('public.orders'), { table: 'public.orders' });
    const r = await cli('pause', '--table', 'orders');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^shadowcut: several migrations match orders: (shop|public)\.orders, (shop|public)\.orders/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect((await cliStatus('public.orders')).paused).toBe(false);
  });

  it('say so when no run of the table is going', async () => {
    const r = await cli('status', '--table', 'orders');
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr).toBe(`shadowcut: no migration of orders is running (no control socket at ${path.join(tmp, 'shadowcut-orders.sock')})\n`);
  });

  it('find no run in a control directory not made yet', async () => {
    const missing = path.join(tmp, 'not-made');
    process.env.SHADOWCUT_CONTROL_DIR = missing;
    try {
      const r = await cli('status', '--table', 'orders');
      expect(r.stderr).toBe(`shadowcut: no migration of orders is running (no control socket at ${path.join(missing, 'shadowcut-orders.sock')})\n`);
    } finally {
      process.env.SHADOWCUT_CONTROL_DIR = tmp;
    }
  });

  it('reach a run by --socket or --port, and never steer a different table', async () => {
    const state = newState('shop.orders');
    const server = await serve(state, { table: 'shop.orders', port: 0 });
    expect(await cli('cutover', '--socket', server.socketPath)).toMatchObject({ code: 0 });
    expect(state.cutoverRequested).toBe(true);
    expect(await cli('set', '--port', String(server.port), '--table', 'orders', 'chunk-time-ms', '250')).toMatchObject({ code: 0 });
    expect(state.settings.chunkTimeMs).toBe(250);
    // Over the port the CLI found the token beside the run's socket; tooling hands it over in a file or the environment.
    const copy = path.join(tmp, 'copied.token');
    await writeFile(copy, await readFile(server.tokenFile!), { mode: 0o600 });
    expect(JSON.parse((await cli('status', '--port', String(server.port), '--token-file', copy, '--json')).stdout)).toMatchObject({ table: 'shop.orders' });
    process.env.SHADOWCUT_CONTROL_TOKEN = (await readFile(copy, 'utf8')).trim();
    try {
      expect(await cli('pause', '--port', String(server.port))).toMatchObject({ code: 0, stderr: '' });
      expect(state.paused).toBe(true);
      process.env.SHADOWCUT_CONTROL_TOKEN = 'f'.repeat(64);
      const refused = await cli('resume', '--port', String(server.port));
      expect(refused).toMatchObject({ code: 2, stderr: expect.stringContaining('shadowcut: the request carries a wrong token') });
      expect(state.paused).toBe(true);
    } finally {
      delete process.env.SHADOWCUT_CONTROL_TOKEN;
    }
    const elsewhere = await cli('status', '--port', '1');
    expect(elsewhere).toMatchObject({
      code: 2,
      stderr:
        'shadowcut: no control token for 127.0.0.1:1: no run in the control directory listens there; give --token-file (the run writes <control socket>.token) or set SHADOWCUT_CONTROL_TOKEN\n',
    });

    const wrong = await cli('abort', '--socket', server.socketPath, '--table', 'invoices');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('is the migration of shop.orders, not of invoices');
    expect(state.abortReason).toBeNull();
  });

  it('pass refusals of bad settings on as one line', async () => {
    const state = newState('shop.orders');
    await serve(state, { table: 'shop.orders' });
    for (const [name, value] of [
      ['max-lag-ms', 'soon'],
      ['max-rows-per-sec', '-5'],
      ['max-load', 'lots'],
      ['colour', 'blue'],
    ]) {
      const r = await cli('set', '--table', 'orders', name, value);
      expect(r.code, `${name} ${value}`).toBe(2);
      expect(r.stderr).toMatch(/^shadowcut: [^\n]+\n$/);
    }
    expect(state.settings.maxLagMs).toBe(1500);
  });
});

describe('a real MariaDB migration steered from the command line', () => {
  let db: mysql.Pool;
  let database: string;
  const runs: { state: RunState; run: Promise<unknown> }[] = [];

  beforeAll(async () => {
    db = adminPool();
    database = new URL(mysqlUrl()).pathname.slice(1);
    await dropTables();
    for (const name of ['ctl_orders', 'ctl_orders_mirror', 'ctl_abort']) {
      await db.query(`CREATE TABLE ${name} (id INT NOT NULL PRIMARY KEY, v VARCHAR(40) NOT NULL) ENGINE=InnoDB`);
      await db.query(`INSERT INTO ${name} SELECT seq, MD5(seq) FROM seq_1_to_20000`);
    }
  });

  // A failed test must not leave a run waiting for its cut-over forever.
  afterEach(async () => {
    for (const { state, run } of runs.splice(0)) {
      state.abortReason ??= 'test ended';
      await run;
    }
  });

  afterAll(async () => {
    await dropTables();
    await db.end();
  });

  async function dropTables(): Promise<void> {
    const [rows] = await db.query<mysql.RowDataPacket[]>(
      "SELECT TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND (TABLE_NAME LIKE 'ctl\\_orders%' OR TABLE_NAME LIKE 'ctl\\_abort%')",
    );
    for (const r of rows) await db.query(`DROP TABLE \`${r.t}\``);
  }

  async function helpers(table: string): Promise<string[]> {
    const [rows] = await db.query<mysql.RowDataPacket[]>(
      'SELECT TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ?',
      [`${table.replaceAll('_', '\\_')}\\_\\_%`],
    );
    return rows.map((r) => String(r.t));
  }

  /** Starts a run with the control server the CLI talks to; it copies slowly until told otherwise. */
  async function start(table: string, alter: string, maxRowsPerSec: number) {
    const qualified = `${database}.${table}`;
    const state = newState(qualified, maxRowsPerSec);
    await serve(state, { table: qualified });
    const engine = await createMysqlEngine(mysqlUrl());
    const run: Promise<MigrateResult | Error> = migrate(
      engine,
      { url: mysqlUrl(), table, alter },
      { execute: true, forceCopy: true, state, postponeCutover: true, dropOld: true, lockTimeoutMs: 2000 },
    )
      .catch((error: Error) => error)
      .finally(() => engine.close());
    runs.push({ state, run });
    // Wrapped: an async function returning the bare promise would wait for the whole run.
    return { run };
  }

  it('pauses, resumes, holds a postponed cut-over and cuts over on command', async () => {
    const { run } = await start('ctl_orders', 'ADD COLUMN note VARCHAR(20) NULL', 1000);
    await until('the copy to start', async () => (await cliStatus('ctl_orders')).status.rowsCopied > 0);

    expect(await cli('pause', '--table', 'ctl_orders')).toMatchObject({ code: 0, stderr: '' });
    const paused = await until('the pause to take effect', async () => {
      const s = await cliStatus('ctl_orders');
      return s.status.state === 'paused' && s;
    });
    expect(paused.paused).toBe(true);
    expect(paused.status.rowsCopied).toBeLessThan(20_000);
    // Writes go on while the copy is paused; the stream must still carry them to the shadow.
    for (const table of ['ctl_orders', 'ctl_orders_mirror']) {
      await db.query(`UPDATE ${table} SET v = 'while paused' WHERE id % 1000 = 7`);
      await db.query(`INSERT INTO ${table} VALUES (20001, 'new while paused')`);
    }
    for (let poll = 0; poll < 4; poll++) {
      await sleep(300);
      const s = await cliStatus('ctl_orders');
      expect(s.status.state).toBe('paused');
      expect(s.status.rowsCopied).toBe(paused.status.rowsCopied);
    }
    expect((await cli('status', '--table', 'ctl_orders')).stdout).toMatch(/state\s+paused/);

    expect(await cli('set', '--table', 'ctl_orders', 'max-rows-per-sec', '0')).toMatchObject({ code: 0 });
    expect(await cli('resume', '--table', 'ctl_orders')).toMatchObject({ code: 0 });
    await until('the copy to go on', async () => (await cliStatus('ctl_orders')).status.rowsCopied > paused.status.rowsCopied);

    // The rest of the copy and the checksum, which took over 30 s on a loaded two-core machine; a run
    // that ended instead is told by its error, not by the wait's bound.
    let over: unknown = null;
    void run.then((r) => (over = r));
    await until(
      'the postponed state',
      async () => {
        if (over) throw new Error(`the run ended before its postponed cut-over: ${String(over)}`);
        return (await cliStatus('ctl_orders')).status.state === 'postponed';
      },
      120_000,
    );
    const before = await schemaOf(db, 'ctl_orders_mirror');
    for (let poll = 0; poll < 3; poll++) {
      await sleep(300);
      expect((await cliStatus('ctl_orders')).status.state).toBe('postponed');
      expect(await schemaOf(db, 'ctl_orders')).toBe(before);
    }
    expect((await cli('status', '--table', 'ctl_orders')).stdout).toContain('postponed: waiting for "shadowcut cutover"');

    expect(await cli('cutover', '--table', 'ctl_orders')).toMatchObject({ code: 0 });
    const result = await ended(run);
    if (result instanceof Error) throw result;
    expect(result.executed).toBe(true);
    expect(await schemaOf(db, 'ctl_orders')).toContain('`note` varchar(20)');
    expect(await differences(db, 'ctl_orders_mirror', 'ctl_orders')).toEqual([]);
    expect(await helpers('ctl_orders')).toEqual([]);
  }, 300_000);

  it('aborts cleanly on command, leaving the table as it was', async () => {
    const before = await schemaOf(db, 'ctl_abort');
    const { run } = await start('ctl_abort', 'ADD COLUMN note INT NULL', 1000);
    await until('the copy to start', async () => (await cliStatus('ctl_abort')).status.rowsCopied > 0);

    expect(await cli('abort', '--table', 'ctl_abort', '--reason', 'changed my mind')).toMatchObject({ code: 0 });
    const error = await ended(run);
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as Error).message).toBe('aborted: changed my mind');
    expect(await helpers('ctl_abort')).toEqual([]);
    expect(await schemaOf(db, 'ctl_abort')).toBe(before);
  });
});
