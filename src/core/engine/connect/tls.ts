import { readTrustedFile } from '../trusted-files.js';

/**
 * How a connection uses TLS, in libpq's words. MySQL's `ssl-mode` names are the same five but for
 * `allow`: DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY.
 */
export type TlsMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** PEM text read from the files a URL names. */
export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
  passphrase?: string;
}

/** One way to connect: null is without TLS. Each engine maps it onto its driver's options. */
export type TlsAttempt = null | (TlsFiles & { verifyChain: boolean; verifyHost: boolean });

/**
 * The ways a mode connects, in the order they are tried: `prefer` (TLS, then without) and `allow`
 * (without, then TLS) have two, every other mode one. A chain is verified against `ca` where the
 * mode says so; engines decide beforehand when a CA alone upgrades a mode (libpq's `require`).
 */
export function tlsAttempts(mode: TlsMode, files: TlsFiles): TlsAttempt[] {
  const tls = (verifyChain: boolean, verifyHost: boolean): TlsAttempt => ({ ...files, verifyChain, verifyHost });
  switch (mode) {
    case 'disable':
      return [null];
    case 'allow':
      return [null, tls(false, false)];
    case 'prefer':
      return [tls(false, false), null];
    case 'require':
      return [tls(false, false)];
    case 'verify-ca':
      return [tls(true, false)];
    case 'verify-full':
      return [tls(true, true)];
  }
}

/**
 * The first of `attempts` the server takes, with what `connect` made of it. libpq and the mysql
 * client choose between prefer's (or allow's) two ways on every connection; shadowcut chooses once,
 * on its first connection to a server, and every later connection to it takes the same way. Only a
 * failure `worthAnother` names (the server has no TLS, or refuses a connection without it) moves
 * on; any other is the answer.
 */
export async function firstAccepted<T, R>(
  attempts: T[],
  connect: (attempt: T) => Promise<R>,
  worthAnother: (error: unknown) => boolean,
): Promise<{ attempt: T; connected: R }> {
  const [attempt, ...rest] = attempts;
  try {
    return { attempt, connected: await connect(attempt) };
  } catch (error) {
    if (rest.length === 0 || !worthAnother(error)) throw error;
    return firstAccepted(rest, connect, worthAnother);
  }
}

/**
 * A certificate or key file a URL parameter names (or libpq's default in ~/.postgresql), read now,
 * so that a wrong path is one line before anything connects. The root certificate decides whom the
 * run believes it talks to: like every file the run trusts, it is refused when another OS user owns
 * it or could have put it there (trusted-files.ts).
 */
export function readTlsFile(path: string, parameter: string): string {
  return readTrustedFile(path, parameter);
}

/** Node's certificate verification failures (OpenSSL's codes, ERR_TLS_CERT_ALTNAME_INVALID), whose messages alone do not say TLS. */
export function isCertificateError(error: unknown): boolean {
  return /CERT|SIGNATURE|^ERR_TLS_|^ERR_SSL_/.test((error as { code?: string } | null)?.code ?? '');
}
