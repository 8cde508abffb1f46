import os from 'node:os';
import type { CheckResult } from '../engine/contract-values.js';

/** Who runs this process's stages: the OS user and host, and the queue entry when `queue run` started it. */
export function runBy(env: NodeJS.ProcessEnv = process.env): string {
  const entry = env.SHADOWCUT_QUEUE_ENTRY;
  return `${os.userInfo().username}@${os.hostname()}${entry && /^\d+$/.test(entry) ? ` (queue #${entry})` : ''}`;
}

/** The lines of checks worth keeping: every failure, and the notes a dry run would print. */
export function checkLines(checks: CheckResult[]): string[] {
  return checks.filter((c) => !c.ok).map((c) => `FAIL ${c.name}: ${c.message}`);
}
