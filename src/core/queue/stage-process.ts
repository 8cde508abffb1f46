import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** What a stage's `--json` lines say of its progress, as the queue keeps it. */
export interface StageEvent {
  phase?: string;
  percent?: number;
  etaSeconds?: number | null;
  swapped?: boolean;
}

export interface StageExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last line the stage wrote on stderr (its one-line refusal), or ''. */
  lastError: string;
  stdout: string[];
}

/** One `shadowcut <command>` run as a child of the queue's runner. */
export interface StageProcess {
  readonly pid: number | undefined;
  readonly exit: Promise<StageExit>;
  kill(signal: NodeJS.Signals): void;
}

export type Launcher = (args: string[], env: Record<string, string>, onEvent?: (e: StageEvent) => void, onLine?: (line: string) => void) => StageProcess;

/**
 * Runs the CLI at `cli` in a child process. The URL travels in the environment (never in argv, where
 * `ps` shows it), and the child is told to end with its runner: a runner killed with SIGKILL takes its
 * stages with it, as a crash, so the next runner resumes them from their checkpoints instead of
 * finding a stage it does not own still running.
 */
export function cliLauncher(cli: string): Launcher {
  return (args, env, onEvent, onLine) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, ...env, SHADOWCUT_EXIT_WITH_PARENT: String(process.pid) },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: Ctrl-C or a service manager's stop signals the runner, which decides
      // how its stages stop, not each stage behind its back.
      detached: true,
    });
    const stdout: string[] = [];
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      stdout.push(line);
      if (stdout.length > 200) stdout.shift();
      onLine?.(line);
      const event = parseEvent(line);
      if (event && onEvent) onEvent(event);
    });
    const exit = new Promise<StageExit>((resolve) => {
      child.on('error', (error) => resolve({ code: null, signal: null, lastError: `could not start ${cli}: ${error.message}`, stdout }));
      child.on('close', (code, signal) => {
        const last = stderr.trim().split('\n').filter(Boolean);
        resolve({ code, signal, lastError: [...last].reverse().find((l) => l.startsWith('shadowcut: ')) ?? last.pop() ?? '', stdout });
      });
    });
    return { pid: child.pid, exit, kill: (signal) => void child.kill(signal) };
  };
}

function parseEvent(line: string): StageEvent | null {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (parsed.event === 'phase' && typeof parsed.phase === 'string') return { phase: parsed.phase };
  // migrate's "cut-over done" line: the swap has committed.
  if (parsed.event === 'info' && typeof parsed.lockedMs === 'number') return { swapped: true };
  if (parsed.event === 'progress') {
    const copied = Number(parsed.rowsCopied);
    const estimated = Number(parsed.rowsEstimated);
    return {
      percent: estimated > 0 ? Math.min(100, Math.round((100 * copied) / estimated)) : undefined,
      etaSeconds: typeof parsed.etaSeconds === 'number' ? parsed.etaSeconds : null,
    };
  }
  return null;
}

/** A child's end, killing it when it has not ended in `ms` (a relayed request, a plan). */
export async function bounded(child: StageProcess, ms: number): Promise<StageExit> {
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  try {
    return await child.exit;
  } finally {
    clearTimeout(timer);
  }
}
