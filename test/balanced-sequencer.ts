import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each long file took in CI (the shards' logs, rounded; updated by hand when a file grows
 * much). Vitest's own sharding splits by a hash of the paths, which put the queue's and the
 * randomized tester's files on one shard: 1,000 s against 550 s. Every other file counts as a few seconds.
 */
const SECONDS: Record<string, number> = {
  'test/queue.test.ts': 680,
  'test/chaos.test.ts': 300,
  'test/report-page.test.ts': 76,
  'test/resume.test.ts': 71,
  'test/trigger-capture.test.ts': 70,
  'test/revert-window.test.ts': 53,
  'test/postgres-partitions.test.ts': 48,
  'test/table-set.test.ts': 136,
  'test/restore.test.ts': 47,
  'test/plan.test.ts': 43,
  'test/contract.test.ts': 39,
  'test/throttle.test.ts': 39,
  'test/mysql-fk-parents.test.ts': 39,
  'test/backfill.test.ts': 36,
  'test/postgres-catalog.test.ts': 33,
  'test/mysql-table-set.test.ts': 103,
  'test/in-place.test.ts': 32,
  'test/postgres-trigger-capture.test.ts': 30,
  'test/verify.test.ts': 28,
  'test/run-claim.test.ts': 27,
  'test/plan-stage-commands.test.ts': 25,
  'test/secrets.test.ts': 24,
  'test/galera.test.ts': 220,
  'test/postgres-owner-code.test.ts': 21,
  'test/deferred-indexes.test.ts': 21,
  'test/mysql-unique.test.ts': 21,
  'test/mysql-refusals.test.ts': 19,
  'test/mysql-catalog.test.ts': 19,
  'test/mysql-in-place-proof.test.ts': 18,
  'test/cutover-readers.test.ts': 18,
  'test/postgres-corpus-interference.test.ts': 16,
  'test/mapping-proof.test.ts': 16,
  'test/postgres-in-place-proof.test.ts': 15,
  'test/postgres-verify.test.ts': 15,
  'test/throttle-core.test.ts': 14,
  'test/control.test.ts': 13,
  'test/tls.test.ts': 13,
  'test/expand-contract-walk.test.ts': 12,
  'test/restore-identity.test.ts': 12,
  'test/postgres-corpus-values.test.ts': 12,
  'test/reconnect.test.ts': 12,
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
