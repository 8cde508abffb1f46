import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { UserError, CLEANUP_AFTER_FAILURE, ignoreFailure } from '../../../core/engine/errors.js';
import { redactUrl } from '../../../core/engine/connect/secrets.js';
import { firstAccepted, readTlsFile, tlsAttempts, type TlsAttempt, type TlsFiles, type TlsMode } from '../../../core/engine/connect/tls.js';
import { refuseUnknownParameters } from '../../../core/engine/connect/url-parameters.js';
import { guardPasswordRequests } from './password-guard.js';

// Every connection's settings are made here, so no connection is opened before the guard is in place.
guardPasswordRequests();

/** Where and how every connection to one server goes: pools, single clients, the change stream, standbys. */
export interface PgTarget {
  /** As given: for messages (redacted) and the host it names. */
  url: string;
  /** The URL without its TLS parameters, which node-postgres would read with meanings of its own. */
  connectionString: string;
  ssl: false | ConnectionOptions;
}

const TLS_PARAMETERS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'sslpassword'];
/** What node-postgres reads from the URL with libpq's meaning; passed on to it as they are. */
const PASSED_ON = ['host', 'port', 'user', 'password', 'application_name', 'options'];
const MODES: TlsMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/**
 * A postgres:// URL -> the targets to try, in order (two for sslmode=prefer or allow: `connectFirst`
 * picks one). TLS has libpq's meanings, its environment variables included (PGSSLMODE, ...), but
 * for the default: without sslmode there is no TLS. `what` begins messages.
 */
export function parsePgUrl(url: string, what: string): PgTarget[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`${what} is not a valid URL: ${redactUrl(url)}`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new UserError(`${what} must start with postgres:// (or postgresql://) for PostgreSQL`);
  }
  refuseUnknownParameters(u, [...PASSED_ON, ...TLS_PARAMETERS], what);
  const setting = (name: string, variable: string) => u.searchParams.get(name) ?? process.env[variable];
  const given = setting('sslmode', 'PGSSLMODE') ?? 'disable';
  if (!MODES.includes(given as TlsMode)) throw new UserError(`${what} has sslmode=${given}, which is none of ${MODES.join(', ')}`);
  const rootcert = setting('sslrootcert', 'PGSSLROOTCERT') ?? libpqDefault('root.crt');
  const mode = effectiveMode(given as TlsMode, rootcert, what);
  const files: TlsFiles = {
    ca: rootcert === undefined || rootcert === 'system' ? undefined : readTlsFile(rootcert, 'sslrootcert'),
    cert: optionalFile(setting('sslcert', 'PGSSLCERT') ?? libpqDefault('postgresql.crt'), 'sslcert'),
    key: optionalFile(setting('sslkey', 'PGSSLKEY') ?? libpqDefault('postgresql.key'), 'sslkey'),
    passphrase: u.searchParams.get('sslpassword') ?? undefined,
  };
  const plain = new URL(url);
  for (const name of TLS_PARAMETERS) plain.searchParams.delete(name);
  const connectionString = plain.search === u.search ? url : plain.toString();
  return tlsAttempts(mode, files).map((attempt) => ({ url, connectionString, ssl: pgSsl(attempt) }));
}

/**
 * libpq's rules: a root certificate (sslrootcert, or ~/.postgresql/root.crt) makes require verify
 * the chain as verify-ca does; the verify modes need one; sslrootcert=system (the system's CAs, here
 * Node's) is allowed with verify-full only.
 */
function effectiveMode(mode: TlsMode, rootcert: string | undefined, what: string): TlsMode {
  if (rootcert === 'system' && mode !== 'verify-full')
    throw new UserError(`${what} has sslrootcert=system with sslmode=${mode}; libpq allows it with verify-full only`);
  if (mode.startsWith('verify') && rootcert === undefined) {
    throw new UserError(`${what} has sslmode=${mode} without sslrootcert (nor ~/.postgresql/root.crt): name the CA certificate, or sslrootcert=system`);
  }
  return mode === 'require' && rootcert !== undefined ? 'verify-ca' : mode;
}

/** libpq's file under ~/.postgresql when it exists, as libpq looks for it. */
function libpqDefault(name: string): string | undefined {
  const file = path.join(homedir(), '.postgresql', name);
  return existsSync(file) ? file : undefined;
}

function optionalFile(file: string | undefined, parameter: string): string | undefined {
  return file === undefined ? undefined : readTlsFile(file, parameter);
}

/** node-postgres hands these to tls.connect: the chain is checked with rejectUnauthorized, the host name by checkServerIdentity. */
function pgSsl(attempt: TlsAttempt): false | ConnectionOptions {
  if (!attempt) return false;
  const { verifyChain, verifyHost, ...files } = attempt;
  return { ...files, rejectUnauthorized: verifyChain, ...(verifyHost ? {} : { checkServerIdentity: () => undefined }) };
}

/**
 * The one way a connection's settings are made. The URL's own parameters win over `extra`, as
 * node-postgres merges a connection string (a URL's `?application_name=` stays the user's), except
 * startup options: the URL's come first and `extra`'s after them, because the server applies them in
 * order and the pinned search_path of shadowcut's own SQL must not be undone by a `?options=-c search_path=`.
 */
export function pgConfig<C extends pg.ClientConfig>(target: PgTarget, extra: C): C {
  const url = new URL(target.connectionString);
  const theirs = url.searchParams.get('options');
  if (theirs === null || extra.options === undefined) return { ...extra, connectionString: target.connectionString, ssl: target.ssl };
  url.searchParams.delete('options');
  return { ...extra, options: `${theirs} ${extra.options}`, connectionString: url.toString(), ssl: target.ssl };
}

/**
 * A first client, connected, and the target it connected by: prefer falls back to a connection
 * without TLS where the server has none; allow to TLS where the server refuses one without it
 * (pg_hba.conf's `hostssl`: 28000).
 */
export async function connectFirst(targets: PgTarget[], extra: pg.ClientConfig = {}): Promise<{ target: PgTarget; client: pg.Client }> {
  const tried = await firstAccepted(
    targets,
    async (target) => {
      const client = new pg.Client(pgConfig(target, extra));
      client.on('error', () => {});
      try {
        await client.connect();
      } catch (error) {
        await client.end().catch(ignoreFailure(CLEANUP_AFTER_FAILURE));
        throw error;
      }
      return client;
    },
    (error) => /does not support SSL/.test((error as Error).message) || (error as { code?: string }).code === '28000',
  );
  return { target: tried.attempt, client: tried.connected };
}
