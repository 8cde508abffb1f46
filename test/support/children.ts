import type { ChildProcess } from 'node:child_process';

/**
 * The CLI runs a test started and that have not ended. A test that times out leaves its run going:
 * killed when the test has failed (test/setup-children.ts), or it would go on taking the next tests'
 * tables, sockets and cores, and one timeout would fail the rest of the file. What it last said is
 * printed first: a run that hung says where.
 */
const running = new Map<ChildProcess, { args: string[]; tail: string }>();
const TAIL_CHARS = 3000;
/** What `npm test` repeats of it at the end (scripts/test-shards.ts). */
const TAIL_LINES = 20;

export function tracked<C extends ChildProcess>(child: C): C {
  const seen = { args: child.spawnargs.slice(2).map((a) => a.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@')), tail: '' };
  running.set(child, seen);
  const keep = (d: Buffer | string) => (seen.tail = (seen.tail + d.toString()).slice(-TAIL_CHARS));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => running.delete(child));
  return child;
}

export async function killRunning(): Promise<void> {
  await Promise.all(
    [...running].map(
      ([child, seen]) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          console.error(
            `killing a run the failed test left going: ${seen.args.join(' ')}\nits last output:\n${seen.tail.split('\n').slice(-TAIL_LINES).join('\n')}`,
          );
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}
