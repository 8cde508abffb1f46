import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each long file took in CI (the shards' logs, rounded; updated by hand when a file grows
 * much). Vitest's own sharding splits by a hash of the paths, which put the queue's and the
 * randomized tester's files on one shard: 1,000 s against 550 s. Every other file counts as a few seconds.
 */
const SECONDS: Record<string, number> = {
  'test/queue.test.ts': 420,
  'test/chaos.test.ts': 240,
  'test/table-set.test.ts': 60,
  'test/mysql-table-set.test.ts': 30,
  'test/trigger-capture.test.ts': 57,
  'test/resume.test.ts': 56,
  'test/contract.test.ts': 51,
  'test/revert-window.test.ts': 49,
  'test/mysql-fk-parents.test.ts': 36,
  'test/restore.test.ts': 35,
  'test/throttle.test.ts': 31,
  'test/report-page.test.ts': 45,
  'test/in-place.test.ts': 29,
  'test/postgres-partitions.test.ts': 28,
  'test/postgres-catalog.test.ts': 27,
  'test/verify.test.ts': 26,
  'test/run-claim.test.ts': 26,
  'test/plan.test.ts': 27,
  'test/backfill.test.ts': 22,
  'test/mysql-unique.test.ts': 21,
  'test/galera.test.ts': 21,
  'test/postgres-trigger-capture.test.ts': 21,
  'test/plan-stage-commands.test.ts': 20,
  'test/cutover-readers.test.ts': 18,
};
const OTHER_SECONDS = 6;

/** `--shard=i/n` by expected time: the longest files first, each to the shard with the least so far. */
export class BalancedSequencer extends BaseSequencer {
  override async shard(files: TestSpecification[]): Promise<TestSpecification[]> {
    const { config } = this.ctx;
    if (!config.shard) return files;
    const { index, count } = config.shard;
    const name = (f: TestSpecification) => path.relative(config.root, f.moduleId).split(path.sep).join('/');
    const weight = (f: TestSpecification) => SECONDS[name(f)] ?? OTHER_SECONDS;
    const ordered = [...files].sort((a, b) => weight(b) - weight(a) || name(a).localeCompare(name(b)) || a.project.name.localeCompare(b.project.name));
    const loads: number[] = Array.from({ length: count }, () => 0);
    const mine: TestSpecification[] = [];
    for (const file of ordered) {
      const least = loads.indexOf(Math.min(...loads));
      loads[least] += weight(file);
      if (least === index - 1) mine.push(file);
    }
    return mine;
  }
}
