// Servers an attacker runs: a TCP listener that speaks just enough of the PostgreSQL or MySQL
// handshake to ask a client for its password in a form that gives it away, and records every byte
// the client sends after asking. Only for the hostile side of a test: what a real server does is
// tested against real servers.
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

export type HostileAsk = 'pg-cleartext' | 'pg-md5' | 'mysql-clear' | 'mysql-caching-full' | 'pg-error';

/** What `pg-error` answers a startup with: a server's error that clears the line it is printed on, writes another, and reverses what follows. */
export const HOSTILE_ERROR = 'no such role\x1b[2K\rtarget ok: plan succeeded\u202e\x9b8m';

export interface HostileServer {
  port: number;
  /** Whether a client got as far as being asked. */
  asked(): boolean;
  /** Everything clients sent, and what they sent once asked. */
  received(): Buffer;
  afterAsk(): Buffer;
  /** Resolves once every connection a client made has closed. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** `tls`: PEM files; a PostgreSQL client's SSLRequest then gets TLS (a certificate it may or may not verify). */
export async function hostileServer(ask: HostileAsk, tls?: { cert: string; key: string }): Promise<HostileServer> {
  const all: Buffer[] = [];
  const after: Buffer[] = [];
  let asked = false;
  const open = new Set<Socket>();
  let idle: (() => void)[] = [];
  const server: Server = createServer((raw) => {
    open.add(raw);
    raw.on('close', () => {
      open.delete(raw);
      if (open.size === 0) for (const done of idle.splice(0)) done();
    });
    raw.on('error', () => {});
    const conversation = { asked: () => (asked = true), record: (data: Buffer) => (asked ? after.push(data) : undefined) };
    if (ask.startsWith('pg-')) postgresSide(raw, ask, conversation, all, tls);
    else mysqlSide(raw, ask, conversation, all);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    asked: () => asked,
    received: () => Buffer.concat(all),
    afterAsk: () => Buffer.concat(after),
    idle: () => (open.size === 0 ? Promise.resolve() : new Promise((resolve) => idle.push(resolve))),
    close: () => {
      for (const s of open) s.destroy();
      idle = [];
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

interface Conversation {
  asked(): void;
  record(data: Buffer): void;
}

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

/** A PostgreSQL backend message: type byte, length, body. */
const pgMessage = (type: string, body: Buffer) => Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);

const PG_SSL_REQUEST = 80877103;

/** Startup, an optional SSLRequest before it, then the password request; whatever comes after is refused as a wrong password. */
function postgresSide(raw: Socket, ask: HostileAsk, c: Conversation, all: Buffer[], tls?: { cert: string; key: string }): void {
  let pending = Buffer.alloc(0);
  let stream: Socket = raw;
  let requested = false;
  const onData = (data: Buffer) => {
    all.push(data);
    c.record(data);
    if (requested) {
      // A password (or anything else): refused, as by a server that has learned what it wanted.
      stream.end(pgMessage('E', Buffer.from('SFATAL\0C28P01\0Mpassword authentication failed\0\0')));
      return;
    }
    pending = Buffer.concat([pending, data]);
    if (pending.length < 8 || pending.length < pending.readInt32BE(0)) return;
    if (pending.readInt32BE(4) === PG_SSL_REQUEST) {
      pending = pending.subarray(8);
      if (!tls) return void stream.write('N');
      stream.write('S');
      stream.removeListener('data', onData);
      const secure = new TLSSocket(raw, { isServer: true, cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
      secure.on('error', () => {});
      secure.on('data', onData);
      stream = secure;
      return;
    }
    if (ask === 'pg-error') return void stream.end(pgMessage('E', Buffer.from(`SFATAL\0C28000\0M${HOSTILE_ERROR}\0\0`)));
    requested = true;
    const request = ask === 'pg-md5' ? Buffer.concat([int32(5), Buffer.from([1, 2, 3, 4])]) : int32(3);
    stream.write(pgMessage('R', request));
    c.asked();
  };
  stream.on('data', onData);
}

/** A MySQL packet: 3-byte length, sequence number, payload. */
function mysqlPacket(seq: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  header[3] = seq;
  return Buffer.concat([header, payload]);
}

const SCRAMBLE = Buffer.from('0123456789abcdefghij');
// LONG_PASSWORD, CONNECT_WITH_DB, PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION, PLUGIN_AUTH, PLUGIN_AUTH_LENENC_CLIENT_DATA; no SSL.
const CAPABILITIES = 0x1 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000 | 0x200000;

function mysqlGreeting(plugin: string): Buffer {
  const flags = Buffer.alloc(4);
  flags.writeUInt32LE(CAPABILITIES);
  return mysqlPacket(
    0,
    Buffer.concat([
      Buffer.from([10]),
      Buffer.from('8.0.36-hostile\0'),
      Buffer.from([1, 0, 0, 0]),
      SCRAMBLE.subarray(0, 8),
      Buffer.from([0]),
      flags.subarray(0, 2),
      Buffer.from([255, 2, 0]),
      flags.subarray(2, 4),
      Buffer.from([21]),
      Buffer.alloc(10),
      SCRAMBLE.subarray(8),
      Buffer.from([0]),
      Buffer.from(`${plugin}\0`),
    ]),
  );
}

/**
 * The greeting, then an auth switch to mysql_clear_password; or to caching_sha2_password, whose
 * scramble answer is taken, then "perform full authentication" (which mysql2 would answer, without
 * TLS, by asking for the server's public key and sending the password encrypted with it).
 */
function mysqlSide(raw: Socket, ask: HostileAsk, c: Conversation, all: Buffer[]): void {
  let pending = Buffer.alloc(0);
  let packets = 0;
  // The account's plugin is not the server's default: the client answers the greeting with mysql_native_password's scramble, and is switched.
  raw.write(mysqlGreeting(ask === 'mysql-clear' ? 'mysql_clear_password' : 'mysql_native_password'));
  raw.on('data', (data: Buffer) => {
    all.push(data);
    c.record(data);
    pending = Buffer.concat([pending, data]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readUIntLE(0, 3)) {
      const seq = pending[3];
      pending = pending.subarray(4 + pending.readUIntLE(0, 3));
      packets++;
      if (packets === 1) {
        const plugin = ask === 'mysql-clear' ? 'mysql_clear_password' : 'caching_sha2_password';
        raw.write(mysqlPacket(seq + 1, Buffer.concat([Buffer.from([0xfe]), Buffer.from(`${plugin}\0`), SCRAMBLE, Buffer.from([0])])));
        if (ask === 'mysql-clear') c.asked();
      } else if (packets === 2 && ask === 'mysql-caching-full') {
        raw.write(mysqlPacket(seq + 1, Buffer.from([1, 4])));
        c.asked();
      } else {
        const message = Buffer.from("Access denied for user 'fleet'");
        raw.end(mysqlPacket(seq + 1, Buffer.concat([Buffer.from([0xff, 0x15, 0x04]), Buffer.from('#28000'), message])));
        return;
      }
    }
  });
}
