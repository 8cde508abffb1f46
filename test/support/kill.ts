import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { tracked } from './children.js';

const cli = fileURLToPath(new URL('../../dist/bin/shadowcut.js', import.meta.url));

/**
 * Runs the CLI with `args` and hands each JSON line of its stdout to `onEvent` as it comes, with the
 * child (to kill it at a moment of the run). Resolves with its exit code and its stderr's end.
 */
export function cliEvents(
  args: string[],
  onEvent: (event: { event?: string; phase?: string; throttle?: unknown }, child: ChildProcess) => void,
): Promise<{ exitCode: number | null; stderr: string }> {
  const child = tracked(spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  // Kept for the assertion's message: a run that ended early says why there.
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    let event: { event?: string; phase?: string; throttle?: unknown };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return; // not a JSON line
    }
    onEvent(event, child);
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ exitCode: code, stderr })));
}

/**
 * Runs `command --json --execute ...args` and calls `act` with the child once, when it announces
 * `phase` (the JSON log's phase events). Resolves with its exit code and its stderr's end.
 */
function atPhase(
  command: 'migrate' | 'backfill' | 'restore',
  args: string[],
  phase: string,
  act: (child: ChildProcess) => void,
): Promise<{ exitCode: number | null; stderr: string }> {
  let reached = false;
  return cliEvents([command, ...(command === 'migrate' ? ['--force-copy'] : []), '--json', '--execute', ...args], (event, child) => {
    if (reached || event.event !== 'phase' || event.phase !== phase) return;
    reached = true;
    act(child);
  });
}

/**
 * Runs `shadowcut migrate --json ...` (or another command that logs phases: `backfill`, `restore`) and kills it
 * with SIGKILL `delayMs` after it announces `phase`, as a crash at that moment would. Resolves with
 * whether the phase was reached before the process ended on its own.
 */
export async function killDuringPhase(
  args: string[],
  phase: string,
  delayMs = 0,
  command: 'migrate' | 'backfill' | 'restore' = 'migrate',
): Promise<{ killed: boolean; exitCode: number | null; stderr: string }> {
  let killed = false;
  const ended = await atPhase(command, args, phase, (child) => {
    killed = true;
    setTimeout(() => child.kill('SIGKILL'), delayMs);
  });
  return { killed, ...ended };
}

/**
 * Like killDuringPhase, but from `phase` on the kill waits until `ready()` holds (looked at every
 * 20 ms): a state of the run (a checkpoint saved) that a fixed delay reaches only on a fast machine.
 */
export async function killWhenReady(
  args: string[],
  phase: string,
  ready: () => Promise<boolean>,
): Promise<{ killed: boolean; exitCode: number | null; stderr: string }> {
  let killed = false;
  const ended = await atPhase('migrate', args, phase, (child) => {
    const look = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (await ready()) {
        killed = child.kill('SIGKILL');
        return;
      }
      setTimeout(() => void look(), 20);
    };
    void look();
  });
  return { killed, ...ended };
}
