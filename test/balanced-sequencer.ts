import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each long file took (a three-shard run of 2026-11-27, rounded; queue.test.ts split since;
 * updated by hand when a file grows much). Vitest's own sharding splits by a hash of the paths, which put the queue's and the
 * randomized tester's files on one shard: 1,000 s against 550 s. Every other file counts as a few seconds.
 */
const SECONDS: Record<string, number> = {
  'test/queue.test.ts': 420,
  'test/chaos.test.ts': 318,
  'test/galera.test.ts': 236,
  'test/queue-trigger-capture.test.ts': 205,
  'test/table-set.test.ts': 147,
  'test/mysql-table-set.test.ts': 117,
  'test/report-page.test.ts': 78,
  'test/resume.test.ts': 69,
  'test/trigger-capture.test.ts': 68,
  'test/revert-window.test.ts': 50,
  'test/postgres-keyless-copy.test.ts': 49,
  'test/postgres-catalog.test.ts': 48,
  'test/plan.test.ts': 48,
  'test/restore.test.ts': 45,
  'test/mysql-cascades.test.ts': 45,
  'test/throttle.test.ts': 43,
  'test/mysql-fk-parents.test.ts': 42,
  'test/contract.test.ts': 42,
  'test/postgres-partitions.test.ts': 41,
  'test/in-place.test.ts': 32,
  'test/verify.test.ts': 31,
  'test/mysql-refusals.test.ts': 29,
  'test/old-table-names.test.ts': 26,
  'test/secrets.test.ts': 24,
  'test/backfill.test.ts': 24,
  'test/run-claim.test.ts': 23,
  'test/deferred-indexes.test.ts': 23,
  'test/plan-stage-commands.test.ts': 21,
  'test/mysql-unique.test.ts': 19,
  'test/mysql-set-swap.test.ts': 19,
  'test/tls.test.ts': 18,
  'test/postgres-trigger-capture.test.ts': 16,
  'test/postgres-in-place-proof.test.ts': 16,
  'test/mysql-parent-keys.test.ts': 16,
  'test/control.test.ts': 16,
  'test/mysql-cutover.test.ts': 15,
  'test/mysql-catalog.test.ts': 15,
  'test/postgres-owner-code.test.ts': 14,
  'test/mysql-in-place-proof.test.ts': 14,
  'test/cutover-readers.test.ts': 14,
  'test/restore-identity.test.ts': 13,
  'test/state-seal.test.ts': 12,
  'test/throttle-core.test.ts': 11,
  'test/postgres-corpus-interference.test.ts': 11,
  'test/postgres-corpus-values.test.ts': 10,
};
const OTHER_SECONDS = 4;

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
