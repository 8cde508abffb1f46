import pg from 'pg';
import { passwordRefusal, type PasswordTransport } from '../../../core/engine/connect/password-exchange.js';

/** What node-postgres's Client keeps that the guard reads; its types leave these out. */
interface ClientInternals {
  host: string;
  port: number;
  ssl: boolean | { rejectUnauthorized?: boolean };
  connection: { stream: { destroy(): void }; emit(event: 'error', error: Error): boolean };
}

type AuthHandler = (this: ClientInternals, message: unknown) => void;

/** node-postgres's handlers of the two requests that give the password away, and what each asks for. */
const GIVING_AWAY: Record<string, string> = {
  _handleAuthCleartextPassword: 'it in clear text ("password" authentication)',
  _handleAuthMD5Password: 'an MD5 hash of it ("md5" authentication)',
};

const guarded = new WeakSet<AuthHandler>();

/**
 * Puts core/engine/connect/password-exchange.ts's rule in front of node-postgres's answers to a
 * cleartext or MD5 password request. On the Client's prototype, not on each connection: every
 * client answers through these handlers, those the pools make, the claim's, the standbys', the Citus
 * nodes', and the replication stream's, which pg-logical-replication makes itself out of reach of any
 * option. A refused request ends the connection before anything is sent. A node-postgres without
 * these handlers fails here, loudly, rather than connect unguarded (the hostile-server test pins
 * them).
 */
export function guardPasswordRequests(): void {
  const proto = pg.Client.prototype as unknown as Record<string, AuthHandler>;
  for (const [name, asked] of Object.entries(GIVING_AWAY)) {
    const answer = proto[name];
    if (typeof answer !== 'function') throw new Error(`node-postgres has no ${name}: shadowcut cannot guard its password`);
    if (guarded.has(answer)) continue;
    const guard: AuthHandler = function (message) {
      const refused = passwordRefusal(transportOf(this), asked, "use sslmode=verify-full with the server's CA, or scram-sha-256 on the server");
      if (!refused) return answer.call(this, message);
      this.connection.emit('error', refused);
      this.connection.stream.destroy();
    };
    guarded.add(guard);
    proto[name] = guard;
  }
}

function transportOf(client: ClientInternals): PasswordTransport {
  const unixSocket = client.host.startsWith('/');
  const { ssl } = client;
  return {
    server: unixSocket ? client.host : `${client.host}:${client.port}`,
    unixSocket,
    socket: client.connection.stream,
    verifyChain: ssl === true || (typeof ssl === 'object' && ssl.rejectUnauthorized !== false),
  };
}
