import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { tracked } from './children.js';

const cli = fileURLToPath(new URL('../../dist/bin/shadowcut.js', import.meta.url));

/**
 * Runs `shadowcut migrate --json ...` (or another command that logs phases: `backfill`, `restore`) and kills it
 * with SIGKILL `delayMs` after it announces `phase` (the JSON log's phase events), as a crash at that
 * moment would. Resolves with whether the phase was reached before the process ended on its own.
 */
export function killDuringPhase(
  args: string[],
  phase: string,
  delayMs = 0,
  command: 'migrate' | 'backfill' | 'restore' = 'migrate',
): Promise<{ killed: boolean; exitCode: number | null; stderr: string }> {
  const child = tracked(
    spawn(process.execPath, [cli, command, ...(command === 'migrate' ? ['--force-copy'] : []), '--json', '--execute', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let killed = false;
  // Kept for the assertion's message: a run that ended before the phase says why there.
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      const event = JSON.parse(line) as { event?: string; phase?: string };
      if (!killed && event.event === 'phase' && event.phase === phase) {
        killed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    } catch {
      // not a JSON line
    }
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ killed, exitCode: code, stderr })));
}
