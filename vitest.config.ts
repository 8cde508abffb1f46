import { configDefaults, defineConfig } from 'vitest/config';
import { BalancedSequencer } from './test/balanced-sequencer.js';

// Files that read only the repository (the docs against the CLI and the source) and the unit tests of
// core's protocols (test/unit, seconds): they run in every `npm test` but start no server, so
// `npm run test:unit` (`vitest run --project no-servers`, two files at once) works on a machine without them.
const withoutServers = [
  'test/docs.test.ts',
  'test/bench-page.test.ts',
  'test/untrusted-files.test.ts',
  'test/control-owner.test.ts',
  'test/password-exchange.test.ts',
  'test/hostile-target-text.test.ts',
  'test/unit/**/*.test.ts',
];

export default defineConfig({
  test: {
    // Bounds for a test that hangs, not timings: CI's two cores under three shards have run files at a
    // third of the speed seen here, and Citus tests then passed 120 s while working.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // All test files share the same servers (and replication streams), so run them one at a time.
    fileParallelism: false,
    // Database drivers and replication clients keep native sockets/timers; child processes
    // isolate them more reliably than worker threads.
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
    // Shards of about equal time (scripts/test-shards.ts runs them side by side).
    sequence: { sequencer: BalancedSequencer },
    projects: [
      {
        extends: true,
        test: {
          name: 'servers',
          // Starts (or reuses) the private database servers and exports SHADOWCUT_*_URL. Vitest runs a
          // project's global setup only when one of its files is selected.
          globalSetup: ['test/global-setup.ts'],
          setupFiles: ['test/setup-children.ts'],
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...withoutServers],
        },
      },
      { extends: true, test: { name: 'no-servers', include: withoutServers } },
    ],
  },
});
