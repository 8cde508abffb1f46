import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each long file took (a three-shard `.ci/run` from a fresh clone, 2026-11-28 evening, rounded;
 * updated by hand when a file grows much). Vitest's own sharding splits by a hash of the paths, which put the queue's and the
 * randomized tester's files on one shard: 1,000 s against 550 s. Every other file counts as a few seconds.
 */
const SECONDS: Record<string, number> = {
  'test/queue.test.ts': 427,
  'test/chaos.test.ts': 420,
  'test/galera.test.ts': 300,
  'test/queue-trigger-capture.test.ts': 196,
  'test/table-set.test.ts': 165,
  'test/fault-matrix.test.ts': 152,
  'test/queue-trust.test.ts': 135,
  'test/citus-migrate.test.ts': 133,
  'test/mysql-table-set.test.ts': 121,
  'test/report-page.test.ts': 85,
  'test/resume.test.ts': 84,
  'test/trigger-capture.test.ts': 73,
  'test/citus-revert.test.ts': 57,
  'test/postgres-partitions.test.ts': 57,
  'test/throttle.test.ts': 52,
  'test/mysql-cascade-widening.test.ts': 48,
  'test/checkpoint-owner.test.ts': 47,
  'test/postgres-keyless-copy.test.ts': 45,
  'test/fleet.test.ts': 72,
  'test/revert-window.test.ts': 44,
  'test/mysql-cascades.test.ts': 44,
  'test/citus-reference.test.ts': 43,
  'test/key-replaced.test.ts': 30,
  'test/citus-toolkit.test.ts': 30,
  'test/restore.test.ts': 43,
  'test/mysql-fk-parents.test.ts': 40,
  'test/mysql-in-place-proof.test.ts': 39,
  'test/in-place.test.ts': 39,
  'test/plan.test.ts': 39,
  'test/contract.test.ts': 38,
  'test/verify.test.ts': 35,
  'test/backfill.test.ts': 34,
  'test/postgres-catalog.test.ts': 33,
  'test/mysql-cascade-chains.test.ts': 27,
  'test/plan-stage-commands.test.ts': 27,
  'test/old-table-names.test.ts': 26,
  'test/fault-matrix-set.test.ts': 25,
  'test/deferred-indexes.test.ts': 25,
  'test/control.test.ts': 23,
  'test/run-claim.test.ts': 22,
  'test/chaos-citus.test.ts': 21,
  'test/postgres-trigger-capture.test.ts': 20,
  'test/postgres-owner-code.test.ts': 20,
  'test/mysql-catalog.test.ts': 20,
  'test/fault-matrix-fleet.test.ts': 19,
  'test/secrets.test.ts': 18,
  'test/parallel-copy.test.ts': 18,
  'test/mysql-unique.test.ts': 17,
  'test/postgres-corpus-values.test.ts': 16,
  'test/postgres-in-place-proof.test.ts': 15,
  'test/mysql-parent-keys.test.ts': 15,
  'test/postgres-native-alters.test.ts': 22,
  'test/mysql-cutover.test.ts': 14,
  'test/mysql-refusals.test.ts': 14,
  'test/lost-sessions.test.ts': 13,
  'test/mysql-set-swap.test.ts': 13,
  'test/cutover-readers.test.ts': 12,
  'test/expand-contract-walk.test.ts': 12,
  'test/history.test.ts': 12,
  'test/mysql-revert-engine.test.ts': 12,
  'test/postgres-corpus-keys.test.ts': 12,
  'test/postgres-verify.test.ts': 11,
  'test/tls.test.ts': 11,
  'test/postgres-corpus-interference.test.ts': 11,
  'test/citus-refusals.test.ts': 11,
  'test/throttle-core.test.ts': 11,
  'test/fault-disk-full.test.ts': 10,
  'test/restore-identity.test.ts': 10,
  'test/reconnect.test.ts': 10,
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
