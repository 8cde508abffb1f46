import { statfs } from 'node:fs/promises';
import type { DiskSpace } from './ports/sizing.js';

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|::1|\[::1\])$/i;

/**
 * Free space under the server's data directory, read with statfs when the server runs on this
 * host (a loopback address or a socket: `host` undefined). Anywhere else, or unreadable from here
 * (another user's directory, a container), it is unknown, and says why.
 */
export async function localFreeSpace(host: string | undefined, dir: string): Promise<DiskSpace> {
  if (host !== undefined && host !== '' && !LOOPBACK.test(host)) {
    return { unknown: `the server runs on ${host}, and its data directory ${dir} cannot be seen from this host` };
  }
  try {
    const s = await statfs(dir);
    return { path: dir, availableBytes: Number(s.bavail) * Number(s.bsize) };
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).message;
    return { unknown: `the server's data directory ${dir} cannot be read from here (${code}); it may belong to another user or a container` };
  }
}
