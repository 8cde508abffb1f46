import type { ChildProcess } from 'node:child_process';

/**
 * The CLI runs a test started and that have not ended. A test that times out leaves its run going:
 * killed when the test has failed (test/setup-children.ts), or it would go on taking the next tests'
 * tables, sockets and cores, and one timeout would fail the rest of the file.
 */
const running = new Set<ChildProcess>();

export function tracked<C extends ChildProcess>(child: C): C {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

export async function killRunning(): Promise<void> {
  const left = [...running];
  await Promise.all(
    left.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}
