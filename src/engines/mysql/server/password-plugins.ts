import { authPlugins, type AuthPlugin } from 'mysql2';
import { passwordRefusal, type PasswordTransport } from '../../../core/engine/connect/password-exchange.js';

/** What an auth plugin reads of its connection; mysql2's types leave `stream` out. */
interface PluginConnection {
  config: { host?: string; port?: number; socketPath?: string; password?: string; ssl?: string | { rejectUnauthorized?: boolean } };
  stream?: unknown;
}

/** caching_sha2_password's "perform full authentication": the password itself, in clear or under a key the server sends. */
const FULL_AUTHENTICATION = Buffer.from([4]);

const REMEDY = 'use ssl-mode=VERIFY_IDENTITY with ssl-ca';

function refusal(connection: PluginConnection, asked: string): Error | null {
  const { config } = connection;
  const transport: PasswordTransport = {
    server: config.socketPath ?? `${config.host}:${config.port}`,
    unixSocket: Boolean(config.socketPath),
    socket: connection.stream,
    verifyChain: typeof config.ssl === 'object' && config.ssl.rejectUnauthorized !== false,
  };
  return passwordRefusal(transport, asked, REMEDY);
}

/** A refusal as mysql2 takes one from a plugin: a rejected promise fails the handshake (a throw would escape its parser). */
const rejected = (error: Error): Promise<Buffer> => Promise.reject(error);

/** The password in clear text, where core/engine/connect/password-exchange.ts allows it; a rejection (mysql2's way for a plugin to fail) otherwise. */
const cleartext =
  (asked: string): AuthPlugin =>
  ({ connection }) =>
  () => {
    const conn = connection as unknown as PluginConnection;
    const refused = refusal(conn, asked);
    return refused ? rejected(refused) : Buffer.from(`${conn.config.password ?? ''}\0`, 'utf8');
  };

/**
 * Every MySQL connection's `authPlugins`: the exchanges that send the password itself follow
 * core/engine/connect/password-exchange.ts. mysql2 would send it in clear over any TLS (verified or
 * not) and, without TLS, encrypt it with a public key the server sends: whoever runs the server gets
 * it. Naming these plugins also keeps mysql2 from answering a server's first greeting with the clear
 * password (it does so for sha256_password and mysql_clear_password over TLS unless a plugin of the
 * name is given): the first answer is then mysql_native_password's scramble, and the server switches.
 * caching_sha2_password's fast path (a scramble) is mysql2's own; only its full authentication is
 * judged.
 */
export const PASSWORD_PLUGINS: Record<string, AuthPlugin> = {
  mysql_clear_password: cleartext('it in clear text (mysql_clear_password)'),
  sha256_password: cleartext('it in clear text, or encrypted with a key the server sends (sha256_password)'),
  caching_sha2_password: (meta) => {
    const standard = authPlugins.caching_sha2_password({})(meta);
    return (data) => {
      const asked = 'it in clear text, or encrypted with a key the server sends (caching_sha2_password full authentication)';
      const refused = FULL_AUTHENTICATION.equals(data) ? refusal(meta.connection, asked) : null;
      return refused ? rejected(refused) : standard(data);
    };
  },
};
