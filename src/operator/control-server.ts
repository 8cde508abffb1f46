import { chmod, unlink } from 'node:fs/promises';
import net from 'node:net';
import { UserError, CLEANUP_AFTER_FAILURE, ignoreFailure } from '../core/engine/errors.js';
import type { RunState } from '../core/run/run-state.js';
import { jsonText } from '../core/report/shown-text.js';
import { readAnswer, type ControlAnswer } from './control-answer.js';
import { ownSocket, runSocketPath } from './control-dir.js';
import { sameToken, tokenPath, writeToken } from './control-token.js';

/**
 * The control endpoint of a running migration: `shadowcut status|pause|resume|cutover|abort|set|revert|complete`
 * talk to it. One JSON object per line each way. It only flips fields of the RunState; the runner
 * obeys them at its next check, so a client can never reach into the middle of a phase.
 *
 * Who may ask: on the Unix socket, its file mode (0600) is the check, in a directory only its user can
 * write (control-dir.ts), which a client checks too before it believes an answer. The TCP port can be reached by
 * any local user and by any web page (a browser sends a text/plain POST to 127.0.0.1 without asking
 * first), so there every request must carry the run's token (control-token.ts), and a connection
 * whose line is not a JSON object is closed at that line: nothing after an HTTP header is read.
 */
export type ControlRequest = {
  command: 'status' | 'pause' | 'resume' | 'cutover' | 'abort' | 'set' | 'revert' | 'complete';
  name?: string;
  value?: string;
  reason?: string;
  /** The run's token: required on the TCP port, not needed on the socket. */
  token?: string;
};

export type { ControlAnswer, RunningAnswer } from './control-answer.js';

/** A port's target carries the token; one without is refused by the run (tests send one so on purpose). */
export type ControlTarget = { socketPath: string } | { port: number; token?: string };

export interface ControlServer {
  socketPath: string;
  port?: number;
  /** With a port: the file holding the port's token, `<socket>.token`, mode 0600. */
  tokenFile?: string;
  close(): Promise<void>;
}

/** A request is a few dozen bytes; anything this long is not a client of ours. */
const MAX_LINE_CHARS = 64 * 1024;
const IDLE_TIMEOUT_MS = 60_000;
/** An HTTP request line (`POST / HTTP/1.1`): a browser or a proxy, never a client of ours. */
const HTTP_REQUEST_LINE = /^[A-Z]+ \S+ HTTP\/1/;

export async function startControlServer(
  state: RunState,
  options: { socketPath?: string; port?: number; table: string; idleTimeoutMs?: number },
): Promise<ControlServer> {
  const socketPath = runSocketPath(options.table, options.socketPath);
  const connections = new Set<net.Socket>();
  let port: number | null = null;
  /** `token`: what each request must carry (the TCP port), or null (the socket, whose mode already decides who connects). */
  const serve = (token: Buffer | null) => (socket: net.Socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    converse(socket, (line) => judge(line, token, (request) => answer(state, options.table, request, port)), options.idleTimeoutMs ?? IDLE_TIMEOUT_MS);
  };

  await removeStaleSocket(socketPath, options.table);
  const unix = await listen(net.createServer(serve(null)), socketPath, `the control socket ${socketPath}`);
  let tcp: net.Server | undefined;
  const tokenFile = options.port === undefined ? undefined : tokenPath(socketPath);
  try {
    // Anyone who can connect can abort the run: keep the socket to its owner.
    await chmod(socketPath, 0o600);
    if (tokenFile !== undefined) {
      const token = Buffer.from(await writeToken(tokenFile), 'utf8');
      tcp = await listen(net.createServer(serve(token)), { host: '127.0.0.1', port: options.port }, `127.0.0.1:${options.port}`);
      port = (tcp.address() as net.AddressInfo).port;
    }
  } catch (error) {
    await closeServer(unix);
    if (tokenFile !== undefined) await unlink(tokenFile).catch(ignoreFailure(CLEANUP_AFTER_FAILURE));
    throw error;
  }
  return {
    socketPath,
    port: port ?? undefined,
    tokenFile,
    async close() {
      for (const socket of connections) socket.destroy();
      // libuv unlinks the socket file when the server closes; the token goes with the port.
      await Promise.all([closeServer(unix), tcp && closeServer(tcp)]);
      if (tokenFile !== undefined)
        await unlink(tokenFile).catch(ignoreFailure('the token file may be gone already, and with the port closed a token left behind opens nothing'));
    },
  };
}

/**
 * One request, one answer, over a fresh connection. A socket is asked only when it is this OS
 * user's, in a directory others cannot write (control-dir.ts); an answer that is not one a run of
 * shadowcut gives is an error, never taken apart half-way.
 */
export function sendControl(target: ControlTarget, request: ControlRequest, timeoutMs = 5000): Promise<ControlAnswer> {
  return new Promise((resolve, reject) => {
    const socket =
      'socketPath' in target ? net.createConnection(connectable(target.socketPath)) : net.createConnection({ host: '127.0.0.1', port: target.port });
    let received = '';
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    const token = 'port' in target && target.token !== undefined ? { token: target.token } : {};
    socket.on('connect', () => socket.write(JSON.stringify({ ...request, ...token }) + '\n'));
    socket.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\n');
      if (end < 0) return;
      socket.destroy();
      try {
        resolve(readAnswer(received.slice(0, end)));
      } catch (error) {
        reject(error);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('the control endpoint closed the connection without answering')));
  });
}

/** The path to connect to for a socket a client was given; refused unless it is this user's (throws inside sendControl's promise: a rejection). */
function connectable(socketPath: string): string {
  const own = ownSocket(socketPath);
  if (own === null) throw new UserError(`no migration is running (no control socket at ${socketPath})`);
  return own;
}

/** What a line gets: an answer, or none; and whether the connection ends with it. */
type Verdict = { answer: ControlAnswer | null; close: boolean };

/**
 * Decides whether a line is a request to obey at all. A client of ours sends JSON objects; anything
 * else (an HTTP request, a stray protocol) is not ours, and the connection ends at its first line,
 * so a body sent after headers is never read. On the port a request without the token is refused
 * and its connection closed too.
 */
function judge(line: string, token: Buffer | null, obey: (request: Record<string, unknown>) => ControlAnswer): Verdict {
  if (HTTP_REQUEST_LINE.test(line)) return { answer: null, close: true };
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    request = undefined;
  }
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    return { answer: refuse('not a JSON object: send one object per line, e.g. {"command":"status"}; the connection is closed'), close: true };
  }
  const given = (request as Record<string, unknown>).token;
  if (token !== null && !sameToken(given, token)) {
    const why = given === undefined ? 'carries no token' : 'carries a wrong token';
    return {
      answer: refuse(
        `the request ${why}: the control port obeys only requests with the run's token (the file <control socket>.token); the connection is closed`,
      ),
      close: true,
    };
  }
  return { answer: obey(request as Record<string, unknown>), close: false };
}

function answer(state: RunState, table: string, request: Record<string, unknown>, port: number | null): ControlAnswer {
  const { command, name, value, reason } = request;
  switch (command) {
    case 'status':
      break;
    case 'pause':
      state.paused = true;
      break;
    case 'resume':
      state.paused = false;
      break;
    case 'cutover':
      state.cutoverRequested = true;
      break;
    case 'revert':
    case 'complete':
      // Only once the old table follows the new one: before the cut-over there is nothing to go back to (abort instead).
      if (state.status.state !== 'revert-window') {
        return refuse(`${table} is not in a revert window (state: ${state.status.state}); only a run with --revert-window has one, after its cut-over`);
      }
      if (command === 'revert') state.revertRequested = true;
      else state.completeRequested = true;
      break;
    case 'abort':
      if (reason !== undefined && typeof reason !== 'string') return refuse('"reason" must be a string');
      // The first reason is the one the run reports; a repeated abort changes nothing.
      state.abortReason ??= reason?.trim() || 'aborted by operator';
      break;
    case 'set':
      if (typeof name !== 'string' || typeof value !== 'string') return refuse('set needs "name" and "value" strings');
      try {
        state.set(name, value);
      } catch (error) {
        return refuse((error as Error).message);
      }
      break;
    default:
      return refuse(`unknown command ${JSON.stringify(command)} (status, pause, resume, cutover, abort, set, revert, complete)`);
  }
  return {
    ok: true,
    table,
    status: state.status,
    settings: state.settings,
    paused: state.paused,
    cutoverRequested: state.cutoverRequested,
    abortReason: state.abortReason,
    port,
  };
}

const refuse = (error: string): ControlAnswer => ({ ok: false, error });

/** Serves one client. Whatever it sends, the worst outcome is its own connection being closed. */
function converse(socket: net.Socket, reply: (line: string) => Verdict, idleTimeoutMs: number): void {
  let pending = '';
  socket.setEncoding('utf8');
  socket.setTimeout(idleTimeoutMs, () => socket.destroy());
  socket.on('error', () => {}); // a client vanishing mid-answer concerns only that client
  socket.on('data', (chunk: string) => {
    pending += chunk;
    for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
      const line = pending.slice(0, end).trim();
      pending = pending.slice(end + 1);
      if (!line) continue;
      const { answer, close } = reply(line);
      if (close) {
        // Nothing more is read from this connection: not the rest of this chunk, not what follows.
        socket.removeAllListeners('data');
        socket.pause();
        if (answer) socket.end(jsonText(answer) + '\n', () => socket.destroy());
        else socket.destroy();
        return;
      }
      // A client that sends without reading would otherwise pile answers up in our memory. jsonText: a
      // script may print the answer (its table and error are others' text) to a terminal as it comes.
      if (!socket.write(jsonText(answer) + '\n')) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    }
    if (pending.length > MAX_LINE_CHARS) {
      socket.removeAllListeners('data');
      socket.end(JSON.stringify(refuse(`request line longer than ${MAX_LINE_CHARS} characters`)) + '\n', () => socket.destroy());
    }
  });
}

/**
 * A socket file left by a dead run (kill -9 skips our cleanup) is removed; one that still answers
 * belongs to a live run of the same table, and two runs on one table must never overlap.
 */
async function removeStaleSocket(socketPath: string, table: string): Promise<void> {
  // Another user's socket is refused, never asked: whether it answers says nothing about a run of ours.
  if (ownSocket(socketPath) === null) return;
  if (await answers(socketPath)) {
    throw new UserError(`a migration of ${table} is already running (its control socket ${socketPath} answers); see "shadowcut status --table ${table}"`);
  }
  await unlink(socketPath);
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') resolve(false);
      else reject(new UserError(`cannot use the control socket ${socketPath}: ${error.message}`));
    });
  });
}

function listen(server: net.Server, where: string | net.ListenOptions, what: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    server.once('error', (error) => reject(new UserError(`cannot open ${what}: ${error.message}`)));
    server.listen(where, () => {
      // After listening, an accept failure (e.g. out of file descriptors) must not take the run down.
      server.removeAllListeners('error').on('error', () => {});
      resolve(server);
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
