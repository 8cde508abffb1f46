// Vitest setup file: a failed (or timed-out) test's CLI runs are killed before the next test starts.
import { afterEach } from 'vitest';
import { killRunning } from './support/children.js';

afterEach(async ({ task }) => {
  if (task.result?.state === 'fail') await killRunning();
});
