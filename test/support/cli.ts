import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tracked } from './children.js';

export const cli = fileURLToPath(new URL('../../dist/bin/shadowcut.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI as an operator would, without blocking this process: its own sessions (a test's
 * writers) go on meanwhile. `$URL` in an argument stands for `url`. Needs no server of its own.
 */
export function cliAsync(args: string[], url = '', env: Record<string, string> = {}): Promise<CliRun> {
  const child = tracked(
    spawn(process.execPath, [cli, ...args.map((a) => a.replace('$URL', url))], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    }),
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
