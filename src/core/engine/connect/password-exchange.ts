import { TLSSocket } from 'node:tls';
import { UserError } from '../errors.js';

/**
 * Which password exchanges a connection may answer, the same for both engines (libpq's
 * `require_auth` is the model, with a safe default instead of an opt-in). A server that asks for the
 * password in clear text, for an MD5 hash of it, or to have it encrypted with a public key it sends
 * itself learns it (or what cracking it needs): a line of a `--targets` file naming a host an
 * attacker runs would collect the fleet's password at the first `plan`. So such a request is
 * answered only where the server is proven to be the one named: over TLS whose certificate chain was
 * verified against the CA the URL names (libpq's verify-ca and verify-full, MySQL's VERIFY_CA and
 * VERIFY_IDENTITY), or over a Unix socket (a process on this machine, the path the URL named, as the
 * engines' own clients judge it). Exchanges that never send the password (SCRAM, MySQL's scramble
 * hashes) are left alone: the server learns nothing it could log in with.
 */
export interface PasswordTransport {
  /** host:port, or the socket's path: for the message. */
  server: string;
  unixSocket: boolean;
  /** The socket the password would go over, once the driver has set up TLS on it (or not). */
  socket: unknown;
  /** The driver was told to verify the chain (rejectUnauthorized), not only to encrypt. */
  verifyChain: boolean;
}

/** Null when the request may be answered over `transport`; else the refusal, one line. `asked` says what the server asked for. */
export function passwordRefusal(transport: PasswordTransport, asked: string, remedy: string): UserError | null {
  if (transport.unixSocket) return null;
  // Both: a driver that was told to verify and a socket that says it did (a resumed session included).
  if (transport.verifyChain && transport.socket instanceof TLSSocket && transport.socket.authorized) return null;
  return new UserError(`refusing to send the password to ${transport.server}: the server asks for ${asked}, without verified TLS; ${remedy}`);
}
