import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Starts (or reuses) the private database servers and exports SHADOWCUT_*_URL.
    globalSetup: ['test/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // All test files share the same servers (and replication streams), so run them one at a time.
    fileParallelism: false,
    // Database drivers and replication clients keep native sockets/timers; child processes
    // isolate them more reliably than worker threads.
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
