import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each long file took (a three-shard run of 2026-11-27 afternoon, rounded;
 * updated by hand when a file grows much). Vitest's own sharding splits by a hash of the paths, which put the queue's and the
 * randomized tester's files on one shard: 1,000 s against 550 s. Every other file counts as a few seconds.
 */
const SECONDS: Record<string, number> = {
  'test/queue.test.ts': 368,
  'test/chaos.test.ts': 364,
  'test/galera.test.ts': 274,
  'test/queue-trigger-capture.test.ts': 194,
  'test/table-set.test.ts': 149,
  'test/queue-trust.test.ts': 128,
  'test/mysql-table-set.test.ts': 111,
  'test/report-page.test.ts': 74,
  'test/citus-migrate.test.ts': 69,
  'test/trigger-capture.test.ts': 63,
  'test/resume.test.ts': 60,
  'test/postgres-partitions.test.ts': 50,
  'test/postgres-keyless-copy.test.ts': 47,
  'test/contract.test.ts': 47,
  'test/citus-reference.test.ts': 45,
  'test/throttle.test.ts': 44,
  'test/mysql-cascades.test.ts': 40,
  'test/revert-window.test.ts': 39,
  'test/mysql-cascade-widening.test.ts': 38,
  'test/restore.test.ts': 31,
  'test/plan.test.ts': 31,
  'test/citus-revert.test.ts': 30,
  'test/checkpoint-owner.test.ts': 30,
  'test/mysql-cascade-chains.test.ts': 29,
  'test/in-place.test.ts': 27,
  'test/fleet.test.ts': 27,
  'test/verify.test.ts': 26,
  'test/mysql-fk-parents.test.ts': 26,
  'test/postgres-in-place-proof.test.ts': 24,
  'test/secrets.test.ts': 23,
  'test/old-table-names.test.ts': 23,
  'test/backfill.test.ts': 21,
  'test/run-claim.test.ts': 20,
  'test/chaos-citus.test.ts': 20,
  'test/postgres-catalog.test.ts': 19,
  'test/plan-stage-commands.test.ts': 17,
  'test/mysql-unique.test.ts': 16,
  'test/mysql-set-swap.test.ts': 15,
  'test/postgres-trigger-capture.test.ts': 14,
  'test/postgres-corpus-interference.test.ts': 14,
  'test/mysql-parent-keys.test.ts': 14,
  'test/deferred-indexes.test.ts': 14,
  'test/expand-contract-walk.test.ts': 13,
  'test/postgres-verify.test.ts': 12,
  'test/mysql-in-place-proof.test.ts': 12,
  'test/mysql-catalog.test.ts': 12,
  'test/history.test.ts': 12,
  'test/cutover-readers.test.ts': 12,
  'test/postgres-owner-code.test.ts': 11,
  'test/mysql-refusals.test.ts': 11,
  'test/citus-refusals.test.ts': 11,
  'test/postgres-native-alters.test.ts': 10,
  'test/postgres-corpus-keys.test.ts': 10,
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
