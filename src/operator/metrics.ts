import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '../core/engine/errors.js';
import type { RunState } from '../core/run/run-state.js';
import { shownText } from '../core/report/shown-text.js';
import { buildReport } from './report.js';
import { reportPage } from './report-page/page.js';

/**
 * `--metrics-port`: GET /metrics in the Prometheus text exposition format (version 0.0.4), and GET /
 * the run's page (report-page/) live. The format is a few lines of text per metric, so it is written
 * here by hand rather than adding a client library.
 */
export async function startMetricsServer(state: RunState, port: number, host = '127.0.0.1'): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    if (!loopbackHost(request.headers.host)) {
      return send(response, 421, `this server answers only to the Host 127.0.0.1, localhost or [::1]; ask http://127.0.0.1:${port}/\n`);
    }
    const { pathname } = new URL(request.url ?? '/', 'http://localhost');
    if (pathname !== '/metrics' && pathname !== '/') return send(response, 404, 'not found; try /metrics, or / for the live page\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'GET only\n');
    if (pathname === '/') return send(response, 200, livePage(state), 'text/html; charset=utf-8');
    send(response, 200, renderMetrics(state), 'text/plain; version=0.0.4; charset=utf-8');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE' || error.code === 'EACCES'
          ? new UserError(`--metrics-port ${port}: cannot listen on ${host}:${port} (${error.code})`)
          : error,
      ),
    );
    server.listen(port, host, resolve);
  });
  // The migration is what keeps the process alive; a metrics server left open must not.
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // close() drops idle keep-alive connections itself, but one stuck mid-request would hold it open for minutes.
        server.closeAllConnections();
      }),
  };
}

/**
 * A web page can rebind its own name to 127.0.0.1 and then read this port as its own origin; its
 * requests still carry its name in Host. So only the loopback names are answered. Any port: an SSH
 * tunnel or a port forward gives the browser or Prometheus another one, and a loopback name cannot
 * be rebound, so the port adds nothing to the check.
 */
function loopbackHost(host: string | undefined): boolean {
  return host !== undefined && /^(?:127\.0\.0\.1|localhost|\[::1\])(?::\d{1,5})?$/i.test(host);
}

function send(response: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

function livePage(state: RunState): string {
  const { status } = state;
  const outcome = status.state === 'done' ? 'success' : status.state === 'failed' ? 'failure' : 'running';
  return reportPage({ ...buildReport({ state }, 'success', null, new Date()), outcome }, { live: outcome === 'running' });
}

function renderMetrics(state: RunState): string {
  const s = state.status;
  const table = { table: s.table };
  const throttled = s.state === 'throttled' || s.state === 'paused';
  const out: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: [Record<string, string>, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) out.push(`${name}${labelText(labels)} ${value}`);
  };
  metric('shadowcut_rows_copied', 'gauge', 'Rows copied into the shadow table.', [[table, s.rowsCopied]]);
  metric('shadowcut_rows_estimated', 'gauge', 'Estimated rows of the table.', [[table, s.rowsEstimated]]);
  metric('shadowcut_progress_ratio', 'gauge', 'Copy progress, 0 to 1.', [[table, s.percent / 100]]);
  metric('shadowcut_rows_per_second', 'gauge', 'Copy rate.', [[table, s.rowsPerSec]]);
  metric('shadowcut_rows_updated_total', 'counter', "Rows a backfill's UPDATEs matched (its rows_copied are the rows scanned); 0 for a migration.", [
    [table, s.rowsUpdated],
  ]);
  metric('shadowcut_changes_applied_total', 'counter', 'Changed keys applied to the shadow table from the change stream.', [[table, s.changesApplied]]);
  metric('shadowcut_backlog_keys', 'gauge', 'Changed keys read from the stream and not yet applied.', [[table, s.backlog]]);
  metric(
    'shadowcut_replica_lag_ms',
    'gauge',
    'Worst replica lag at the last probe; absent when no replica is watched.',
    s.lagMs === null ? [] : [[table, s.lagMs]],
  );
  metric('shadowcut_throttled', 'gauge', '1 while the copy is held back (throttled or paused).', [[table, throttled ? 1 : 0]]);
  // A separate info metric keeps shadowcut_throttled one series per table, and the kind of reason
  // (not its text, which carries changing numbers) keeps the label's values few.
  metric(
    'shadowcut_throttle_reason',
    'gauge',
    'Present with value 1 while held back, labelled with the kind of reason.',
    throttled ? [[{ ...table, reason: reasonKind(s.state, s.throttleKind) }, 1]] : [],
  );
  metric(
    'shadowcut_throttled_seconds_total',
    'counter',
    'Time the copy was held back, by kind of reason.',
    Object.entries(s.throttledMs).map(([reason, ms]) => [{ ...table, reason }, ms / 1000]),
  );
  metric('shadowcut_phase', 'gauge', 'The current phase, as a label.', [[{ ...table, phase: s.phase }, 1]]);
  metric('shadowcut_state', 'gauge', 'The current state (running, throttled, paused, postponed, done, failed), as a label.', [
    [{ ...table, state: s.state }, 1],
  ]);
  metric('shadowcut_cutover_attempts', 'gauge', 'Cut-over attempts so far.', [[table, s.cutoverAttempts]]);
  return out.join('\n') + '\n';
}

/** The same kinds the runner keys Status.throttledMs by (core/run/throttler.ts HoldKind). */
function reasonKind(state: string, kind: string | null): string {
  return state === 'paused' ? 'paused' : (kind ?? 'unknown');
}

function labelText(labels: Record<string, string>): string {
  // A table name is others' text: shown as everywhere (core/report/shown-text.ts), then in Prometheus's own escapes.
  const escape = (v: string) => shownText(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${escape(v)}"`)
    .join(',')}}`;
}
