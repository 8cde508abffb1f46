/**
 * The private servers did not start. Its message is one line for the person at the terminal; what
 * went wrong in detail (servers.sh's log tail) has already been printed above it.
 */
export class ServersUnavailable extends Error {
  constructor(detail: string) {
    super(`the private MariaDB/PostgreSQL servers did not start (${detail}); scripts/servers.sh printed why above`);
    this.name = 'ServersUnavailable';
  }
}

/** Ends the process with that one line and a non-zero status: no stack trace for an environment problem. */
export function exitOnServersUnavailable(prefix: string, error: unknown): void {
  if (!(error instanceof ServersUnavailable)) return;
  process.stderr.write(`${prefix}: ${error.message}\n`);
  process.exit(1);
}
