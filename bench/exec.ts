// Child processes for the bench: one helper that runs a command, keeps its output and can be
// bounded by a timeout, plus the paths the bench needs (repo root, the built CLI).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  timedOut: boolean;
  /** CPU seconds (user + system) the process used, sampled from /proc; null where there is no /proc. */
  cpuS: number | null;
  /** The process's peak resident set (VmHWM), MiB, sampled from /proc; null where there is no /proc. */
  peakRssMiB: number | null;
}

export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Called with each complete stdout line as it arrives. */
  onStdoutLine?: (line: string) => void;
}

const running = new Set<ChildProcess>();

/** Kills the children the bench started (by pid, each its own process group); used on Ctrl-C. */
export function killChildren(): void {
  for (const child of running) {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
    }
  }
}

/** Runs a command to completion. Never throws for a non-zero exit; the caller reads `code`. */
export function exec(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    // detached: its own process group, so a timeout can stop it and everything it started.
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(child);
    let stdout = '';
    let stderr = '';
    let partial = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (!opts.onStdoutLine) return;
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) opts.onStdoutLine(line);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
    });
    // Sampled every 200 ms; the last sample before exit undercounts by at most that much CPU. VmHWM
    // is the kernel's own high-water mark, so a sample misses only growth in the last 200 ms.
    let cpuS: number | null = null;
    let peakRssMiB: number | null = null;
    const sampleCpu = () => {
      if (child.pid === undefined) return;
      const v = cpuSeconds(child.pid);
      if (v !== null) cpuS = v;
      const hwm = peakRss(child.pid);
      if (hwm !== null) peakRssMiB = hwm;
    };
    const cpuTimer = setInterval(sampleCpu, 200);
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            if (child.pid !== undefined) {
              try {
                process.kill(-child.pid, 'SIGTERM');
              } catch {
                child.kill('SIGTERM');
              }
            }
          }, opts.timeoutMs);
    child.on('error', (err) => {
      clearInterval(cpuTimer);
      running.delete(child);
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearInterval(cpuTimer);
      running.delete(child);
      if (timer) clearTimeout(timer);
      if (partial && opts.onStdoutLine) opts.onStdoutLine(partial);
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      resolve({ code, signal, stdout, stderr, wallMs, timedOut, cpuS, peakRssMiB });
    });
  });
}

/** utime + stime of a live process (and its waited-for children), in seconds; USER_HZ is 100 on Linux. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17.
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return Number.isFinite(ticks) ? ticks / 100 : null;
  } catch {
    return null;
  }
}

/** VmHWM of a live process, in MiB (the field is in kB). */
function peakRss(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** The checkout this bench belongs to: the nearest directory above the compiled file with package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'shadowcut') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('bench: cannot find the shadowcut checkout above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The bundled CLI next to this compiled bench (dist/bench/exec.js -> dist/bin/shadowcut.js), as `npm run build` makes it. */
export function cliPath(): string {
  return fileURLToPath(new URL('../bin/shadowcut.js', import.meta.url));
}

export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
