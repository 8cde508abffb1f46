// The control socket against another local OS user (docs/invariants.md, invariant 19): `nobody` listening first
// at the path a run of root's would take, or making a directory of the old default's name in /tmp,
// neither keeps the run from starting nor answers for it; a client talks only to sockets of its own
// user, and never crashes on an answer that is not a run's. Needs root (to be a second user); no database servers
// (vitest.config.ts, project `no-servers`), but the built CLI.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startControlServer, type ControlServer } from '../src/operator/control-server.js';
import { defaultSettings } from '../src/core/run/config.js';
import { RunState, settingsOf } from '../src/core/run/run-state.js';

const cliPath = fileURLToPath(new URL('../dist/bin/shadowcut.js', import.meta.url));
const root = process.getuid?.() === 0;
/** `nobody` on Debian: an OS user other than the one running the tests. */
const STRANGER = 65534;
const TABLE = 'shop.t';

const ENV_KEYS = ['TMPDIR', 'HOME', 'SHADOWCUT_CONTROL_DIR', 'XDG_RUNTIME_DIR'];
const saved = { ...process.env };
let shared: string;
/** The running user's home in each test: the default control directory is `~/.shadowcut/control`. */
let home: string;
const strangers: ChildProcess[] = [];
const servers: ControlServer[] = [];

/** The environment of a machine's own defaults: a shared temporary directory like /tmp, no control dir given, no login session. */
function machineDefaults(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...saved, TMPDIR: shared, HOME: home, ...extra };
  delete env.SHADOWCUT_CONTROL_DIR;
  if (!('XDG_RUNTIME_DIR' in extra)) delete env.XDG_RUNTIME_DIR;
  return env;
}

/** Sets this process's environment (each variable: os.tmpdir() reads the real environment, not a new process.env object). */
function useEnv(env: NodeJS.ProcessEnv): void {
  for (const key of ENV_KEYS) {
    if (env[key] === undefined) delete process.env[key];
    else process.env[key] = env[key];
  }
}

beforeEach(() => {
  shared = mkdtempSync(path.join(os.tmpdir(), 'sc-shared-'));
  chmodSync(shared, 0o1777);
  home = mkdtempSync(path.join(os.tmpdir(), 'sc-home-'));
  useEnv(machineDefaults());
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const child of strangers.splice(0)) child.kill('SIGKILL');
  useEnv(saved);
  rmSync(shared, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

function newState(): RunState {
  return new RunState(settingsOf(defaultSettings), { table: TABLE, alter: 'ADD COLUMN note INT', engine: 'mysql' });
}

/** What a run in its revert window answers: what a forger would send to be believed. */
function forgedAnswer(): string {
  const state = newState();
  state.status.state = 'revert-window';
  return JSON.stringify({
    ok: true,
    table: TABLE,
    status: state.status,
    settings: state.settings,
    paused: false,
    cutoverRequested: false,
    abortReason: null,
    port: null,
  });
}

/**
 * `nobody` listens at `socketPath`, answering every line with `answer`; `dirMode` makes its directory
 * first (nobody's, that mode), as someone squatting a run's control directory would.
 */
async function strangerListens(socketPath: string, answer = forgedAnswer(), dirMode?: number): Promise<void> {
  const script = `
    const [where, answer, mode] = process.argv.slice(1);
    const fs = require('fs'), path = require('path');
    if (mode) { fs.mkdirSync(path.dirname(where)); fs.chmodSync(path.dirname(where), Number(mode)); }
    require('net').createServer((s) => s.on('data', () => s.write(answer + '\\n'))).listen(where, () => console.log('up'));`;
  const child = spawn(process.execPath, ['-e', script, socketPath, answer, dirMode === undefined ? '' : String(dirMode)], {
    uid: STRANGER,
    gid: STRANGER,
    cwd: '/',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  strangers.push(child);
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('exit', (code) => reject(new Error(`nobody's listener exited with ${code}`)));
  });
  expect(lstatSync(socketPath).uid).toBe(STRANGER);
}

async function serve(options: { socketPath?: string; port?: number } = {}): Promise<{ state: RunState; server: ControlServer }> {
  const state = newState();
  const server = await startControlServer(state, { table: TABLE, ...options });
  servers.push(server);
  return { state, server };
}

function cli(args: string[], env = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], { timeout: 30_000, encoding: 'utf8', env }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A refusal: exit 2, nothing on stdout, one line on stderr matching `message`. */
function expectRefused(r: { code: number; stdout: string; stderr: string }, message: RegExp): void {
  expect(r, r.stderr).toMatchObject({ code: 2, stdout: '' });
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^shadowcut: /);
  expect(r.stderr).toMatch(message);
}

describe.runIf(root)('the control socket against another OS user', () => {
  it("nobody listening in /tmp at the old default paths neither stops root's run nor answers for it", async () => {
    await strangerListens(path.join(shared, `shadowcut-${TABLE}.sock`));
    // The old default directory, made first by nobody (issue 68, item 3): it kept every run of root's without a session from starting.
    await strangerListens(path.join(shared, 'shadowcut-0', `shadowcut-${TABLE}.sock`), forgedAnswer(), 0o777);
    const { state, server } = await serve();
    // The run's socket is in a directory of root's own, 0700, beside the state key.
    const dir = path.join(home, '.shadowcut', 'control');
    expect(server.socketPath).toBe(path.join(dir, `shadowcut-${TABLE}.sock`));
    for (const made of [dir, path.dirname(dir)]) {
      expect(lstatSync(made).uid).toBe(0);
      expect(lstatSync(made).mode & 0o777).toBe(0o700);
    }

    // The commands reach the real run: not in a revert window, it refuses the revert nobody would have confirmed.
    expectRefused(await cli(['revert', '--table', TABLE]), /shop\.t is not in a revert window \(state: running\)/);
    expect(state.revertRequested).toBe(false);
    expect(await cli(['abort', '--table', 't'])).toMatchObject({ code: 0, stderr: '' });
    expect(state.abortReason).toBe('aborted by operator');
  });

  it('nor does a link nobody made at the old default name', async () => {
    symlinkSync(mkdtempSync(path.join(shared, 'elsewhere-')), path.join(shared, 'shadowcut-0'));
    const { server } = await serve();
    expect(path.dirname(server.socketPath)).toBe(path.join(home, '.shadowcut', 'control'));
    expect(await cli(['status', '--table', TABLE, '--json'])).toMatchObject({ code: 0, stderr: '' });
  });

  it('a default control directory another user owns, or under a directory others can write, is refused in one line, by the run and by the client', async () => {
    const dir = path.join(home, '.shadowcut', 'control');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chownSync(dir, STRANGER, STRANGER);
    const owned = /^the control directory \S+control belongs to another OS user \(uid 65534\): a socket or token there could be replaced/;
    await expect(serve()).rejects.toThrow(owned);
    for (const command of ['revert', 'abort', 'status'])
      expectRefused(await cli([command, '--table', TABLE]), /the control directory \S+ belongs to another OS user \(uid 65534\)/);
    chownSync(dir, 0, 0);

    // Each directory above counts: whoever can write the home can swap ~/.shadowcut for a directory of theirs.
    chmodSync(home, 0o777);
    const above = new RegExp(`the control directory \\S+control is under ${home}, which can be written by other OS users \\(mode 777\\)`);
    await expect(serve()).rejects.toThrow(above);
    expectRefused(await cli(['status', '--table', TABLE]), above);
    chmodSync(home, 0o700);
    await serve();
  });

  it("another user's socket in a directory of root's own is neither asked nor taken over", async () => {
    const dir = mkdtempSync(path.join(shared, 'ctl-'));
    chmodSync(dir, 0o777);
    const socketPath = path.join(dir, `shadowcut-${TABLE}.sock`);
    await strangerListens(socketPath);
    chmodSync(dir, 0o700);

    const owned = /the control socket \S+ belongs to another OS user \(uid 65534\): shadowcut talks only to sockets of the user it runs as/;
    for (const command of ['status', 'revert', 'abort']) expectRefused(await cli([command, '--socket', socketPath]), owned);
    await expect(serve({ socketPath })).rejects.toThrow(owned);
    // Found by its table in the control directory, it is passed over: no run of root's is there.
    expectRefused(await cli(['revert', '--table', TABLE], { ...process.env, SHADOWCUT_CONTROL_DIR: dir }), /^shadowcut: no migration of shop\.t is running/);
  });

  it('a socket or control directory in a directory others can write is refused', async () => {
    const writable = /the control directory \S+ can be written by other OS users \(mode 1777\)/;
    await expect(serve({ socketPath: path.join(shared, 'mine.sock') })).rejects.toThrow(writable);
    process.env.SHADOWCUT_CONTROL_DIR = shared;
    await expect(serve()).rejects.toThrow(writable);
    expectRefused(await cli(['status', '--table', TABLE]), writable);
    // A directory given that only root can write is fine.
    const own = mkdtempSync(path.join(shared, 'given-'));
    chmodSync(own, 0o755);
    const { server } = await serve({ socketPath: path.join(own, 'run.sock') });
    expect(await cli(['status', '--socket', server.socketPath, '--json'])).toMatchObject({ code: 0, stderr: '' });
  });

  it("takes $XDG_RUNTIME_DIR/shadowcut when that is the user's own and private, and finds a run in either directory", async () => {
    const runtime = mkdtempSync(path.join(shared, 'xdg-'));
    process.env.XDG_RUNTIME_DIR = runtime;
    const { server } = await serve();
    expect(server.socketPath).toBe(path.join(runtime, 'shadowcut', `shadowcut-${TABLE}.sock`));
    expect(lstatSync(path.join(runtime, 'shadowcut')).mode & 0o777).toBe(0o700);
    await servers.pop()!.close();

    // Started from cron (no session), found from a terminal that has one.
    delete process.env.XDG_RUNTIME_DIR;
    const { server: cron } = await serve();
    expect(path.dirname(cron.socketPath)).toBe(path.join(home, '.shadowcut', 'control'));
    expect(await cli(['status', '--table', TABLE, '--json'], machineDefaults({ XDG_RUNTIME_DIR: runtime }))).toMatchObject({ code: 0, stderr: '' });
    await servers.pop()!.close();

    // A runtime directory that is not the user's own (sudo keeps the caller's) is passed over.
    chownSync(runtime, STRANGER, STRANGER);
    process.env.XDG_RUNTIME_DIR = runtime;
    const { server: other } = await serve();
    expect(path.dirname(other.socketPath)).toBe(path.join(home, '.shadowcut', 'control'));
    await servers.pop()!.close();

    // Nor is one of the user's own under a directory others can write and rename it in (issue 68, item 3).
    const open = mkdtempSync(path.join(shared, 'open-'));
    chmodSync(open, 0o777);
    const swappable = mkdtempSync(path.join(open, 'xdg-'));
    process.env.XDG_RUNTIME_DIR = swappable;
    const { server: fallback } = await serve();
    expect(path.dirname(fallback.socketPath)).toBe(path.join(home, '.shadowcut', 'control'));
  });

  it('a token file another user owns is not used', async () => {
    const { server } = await serve({ port: 0 });
    const copy = path.join(shared, 'copied.token');
    writeFileSync(copy, `${'0'.repeat(64)}\n`, { mode: 0o600 });
    chownSync(copy, STRANGER, STRANGER);
    expectRefused(
      await cli(['pause', '--port', String(server.port), '--token-file', copy]),
      /the control token file \S+ belongs to another OS user \(uid 65534\)/,
    );
  });
});

describe('a client given an answer that is not a run of shadowcut', () => {
  it('says so in one line, exit 2, never a stack trace', async () => {
    const dir = mkdtempSync(path.join(shared, 'own-'));
    const socketPath = path.join(dir, 'fake.sock');
    let answer = '';
    const fake = net.createServer((s) => s.on('data', () => s.write(answer + '\n')));
    await new Promise<void>((resolve) => fake.listen(socketPath, resolve));
    try {
      const broken = JSON.parse(forgedAnswer()) as { status: Record<string, unknown>; settings: Record<string, unknown> };
      const cases: [unknown, string][] = [
        [{ ok: true, table: TABLE }, 'status'],
        [{ ...broken, status: { ...broken.status, percent: 'all' } }, 'status.percent'],
        [{ ...broken, settings: { ...broken.settings, maxLoad: null } }, 'settings.maxLoad'],
        [{ ...broken, status: { ...broken.status, oldSnapshots: [null] } }, 'status.oldSnapshots[0]'],
        [{ ok: false }, 'error'],
        [[1, 2], 'ok'],
      ];
      for (const [forged, field] of cases) {
        answer = JSON.stringify(forged);
        for (const args of [['status'], ['status', '--json'], ['revert']]) {
          expectRefused(
            await cli([...args, '--socket', socketPath]),
            new RegExp(`answer is not one shadowcut gives \\(${field.replace(/[[\].]/g, '\\$&')}\\)`),
          );
        }
      }
      answer = 'not json';
      expectRefused(await cli(['status', '--socket', socketPath]), /did not answer in JSON/);
    } finally {
      await new Promise((resolve) => fake.close(resolve));
    }
  });
});
