import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each long file took (a two-shard run of 2026-11-26, rounded; updated by hand when a file
 * grows much). Vitest's own sharding splits by a hash of the paths, which put the queue's and the
 * randomized tester's files on one shard: 1,000 s against 550 s. Every other file counts as a few seconds.
 */
const SECONDS: Record<string, number> = {
  'test/queue.test.ts': 450,
  'test/chaos.test.ts': 270,
  'test/galera.test.ts': 215,
  'test/table-set.test.ts': 115,
  'test/mysql-table-set.test.ts': 83,
  'test/report-page.test.ts': 80,
  'test/trigger-capture.test.ts': 63,
  'test/resume.test.ts': 58,
  'test/revert-window.test.ts': 45,
  'test/plan.test.ts': 40,
  'test/restore.test.ts': 37,
  'test/contract.test.ts': 36,
  'test/postgres-partitions.test.ts': 35,
  'test/mysql-fk-parents.test.ts': 33,
  'test/in-place.test.ts': 33,
  'test/backfill.test.ts': 31,
  'test/throttle.test.ts': 28,
  'test/verify.test.ts': 27,
  'test/plan-stage-commands.test.ts': 22,
  'test/secrets.test.ts': 20,
  'test/run-claim.test.ts': 20,
  'test/mysql-refusals.test.ts': 19,
  'test/postgres-catalog.test.ts': 18,
  'test/mysql-unique.test.ts': 17,
  'test/history.test.ts': 15,
  'test/reconnect.test.ts': 14,
  'test/mysql-in-place-proof.test.ts': 14,
  'test/postgres-in-place-proof.test.ts': 14,
  'test/postgres-corpus-interference.test.ts': 13,
  'test/postgres-trigger-capture.test.ts': 12,
  'test/expand-contract-walk.test.ts': 12,
  'test/mysql-catalog.test.ts': 12,
  'test/cutover-readers.test.ts': 12,
  'test/postgres-verify.test.ts': 11,
  'test/tls.test.ts': 11,
  'test/postgres-corpus-dependents.test.ts': 11,
  'test/deferred-indexes.test.ts': 11,
  'test/postgres-owner-code.test.ts': 10,
  'test/postgres-corpus-values.test.ts': 10,
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
