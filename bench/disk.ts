// The disk's own figures, measured in the sitting before the runs, in the filesystem of the servers'
// data: what a commit that waits for the disk costs there (a 4 KiB write then fdatasync, as a redo log
// or WAL write at commit), and how fast a bulk write reaches it (256 MiB, then fdatasync). A result is
// read against them: the same tool on a disk twice as slow is not the same figure.
//   node dist/bench/disk.js <directory>   prints the one line (bench/fixed-rate.sh)
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, readFileSync, realpathSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DiskFigures {
  /** Where the probe wrote: beside the servers' data. */
  dir: string;
  /** The filesystem holding it, from /proc/self/mountinfo: "ext4 /dev/vda on /". */
  filesystem?: string;
  syncedWrite: { writes: number; bytes: number; medianMs: number; p99Ms: number };
  sequential: { mib: number; seconds: number; mbPerS: number };
}

export interface DiskOptions {
  /** Synced small writes to time (default 200). */
  writes?: number;
  /** MiB written in one go before the fdatasync (default 256). */
  sequentialMib?: number;
}

const SMALL = 4096;
const CHUNK = 8 * 2 ** 20;

const hrMs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** The mount holding `dir`: the longest mount point that is a prefix of it. */
function filesystemOf(dir: string): string | undefined {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  } catch {
    return undefined; // not Linux: the figures stand without the name of the filesystem
  }
  let best: { point: string; text: string } | undefined;
  for (const line of lines) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const point = left.split(' ')[4].replace(/\\040/g, ' ');
    const [type, source] = right.split(' ');
    const inside = dir === point || dir.startsWith(point.endsWith('/') ? point : point + '/');
    if (inside && (!best || point.length >= best.point.length)) best = { point, text: `${type} ${source} on ${point}` };
  }
  return best?.text;
}

/** Runs `fn` on a file of its own under `dir`, opened for writing, closed and removed afterwards. */
function withProbe<T>(dir: string, fn: (fd: number) => T): T {
  const file = join(dir, `.shadowcut-disk-probe-${process.pid}`);
  const fd = openSync(file, 'w');
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}

/**
 * The small writes overwrite a file written and synced beforehand, block by block, so each fdatasync
 * carries the data alone, as a log that is reused does.
 */
function syncedWrites(fd: number, writes: number): number[] {
  writeSync(fd, randomBytes(SMALL * writes), 0, SMALL * writes, 0);
  fdatasyncSync(fd);
  const block = randomBytes(SMALL);
  const times: number[] = [];
  for (let i = 0; i < writes; i++) {
    const t0 = process.hrtime.bigint();
    writeSync(fd, block, 0, SMALL, i * SMALL);
    fdatasyncSync(fd);
    times.push(hrMs(t0));
  }
  return times.sort((a, b) => a - b);
}

/** Seconds to write `mib` MiB and fdatasync them. */
function sequentialWrite(fd: number, mib: number): number {
  const chunk = randomBytes(CHUNK);
  const total = mib * 2 ** 20;
  const t0 = process.hrtime.bigint();
  for (let at = 0; at < total; at += CHUNK) writeSync(fd, chunk, 0, Math.min(CHUNK, total - at), at);
  fdatasyncSync(fd);
  return hrMs(t0) / 1000;
}

/** Measures the disk under `dir`, which must exist and be writable. */
export function measureDisk(dir: string, opts: DiskOptions = {}): DiskFigures {
  const writes = opts.writes ?? 200;
  const mib = opts.sequentialMib ?? 256;
  const times = withProbe(dir, (fd) => syncedWrites(fd, writes));
  const seconds = withProbe(dir, (fd) => sequentialWrite(fd, mib));
  return {
    dir,
    filesystem: filesystemOf(realpathSync(dir)),
    syncedWrite: { writes, bytes: SMALL, medianMs: quantile(times, 0.5), p99Ms: quantile(times, 0.99) },
    sequential: { mib, seconds, mbPerS: (mib * 2 ** 20) / 1e6 / seconds },
  };
}

/** One line for the pages. */
export function describeDisk(d: DiskFigures): string {
  const ms = (n: number) => (n >= 10 ? n.toFixed(1) : n.toFixed(2));
  return (
    `disk (${d.filesystem ?? d.dir}): a synced ${d.syncedWrite.bytes / 1024} KiB write (write + fdatasync) ` +
    `median ${ms(d.syncedWrite.medianMs)} ms, p99 ${ms(d.syncedWrite.p99Ms)} ms over ${d.syncedWrite.writes}; ` +
    `sequential ${d.sequential.mbPerS.toFixed(0)} MB/s (${d.sequential.mib} MiB written, then fdatasync)`
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node dist/bench/disk.js <directory>\n');
    process.exit(2);
  }
  try {
    process.stdout.write(describeDisk(measureDisk(dir)) + '\n');
  } catch (e) {
    process.stderr.write(`disk: cannot measure the disk under ${dir}: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
