import { configure, type MigrateResult } from '../../src/core/run/config.js';
import { Applier } from '../../src/core/migrate/applier.js';
import type { ChangeSink, ChangeSource, ChangeStream } from '../../src/core/engine/ports/change-source.js';
import { RunContext } from '../../src/core/migrate/context.js';
import { CheckpointRun } from '../../src/core/engine/state/checkpoint.js';
import type { Reporter } from '../../src/core/report/reporter.js';
import type { CatchUp, Engine, Key, Migration, Position, Session } from '../../src/core/engine/types.js';

/** A lost connection as a driver reports it, and the engine's word that it is one (the step is tried again). */
export const lostConnection = () => Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
export const isLostConnection = (error: unknown) => (error as { code?: string }).code === 'ECONNRESET';

/** The run's identity its checkpoints would carry; these runs save none. */
const unsavedRun = CheckpointRun.fresh({ database: 'test', qualify: (t) => t }, 't');

/**
 * Just enough of an engine's Migration for core's copy path and cut-over to run against: a change
 * source whose keys the test emits (`emit`, one position each), the keys applied (with the session they
 * were applied on), consistent views and the comparisons under a lock, whose differing rows the test
 * chooses (`differ`). A real RunContext and Applier sit on top (`applier`), so what is tested is core's.
 */
export class FakeMigration {
  private sink: ChangeSink | null = null;
  private n = 0;
  readonly acknowledged: Position[] = [];
  /** Each applyKeys call: its keys, and the session when applied under a lock. */
  readonly applied: { keys: Key[]; session?: Session }[] = [];
  /** Keys compared in each consistent view, in order. */
  readonly viewCompared: Key[][] = [];
  /** Keys compared under the cut-over lock, in order. */
  readonly lockedCompared: { keys: Key[]; session: Session }[] = [];
  /** Which of the compared keys differ; nothing by default. */
  differ: (keys: Key[], where: 'view' | 'lock') => Key[] = () => [];
  /** Runs as each consistent view is opened (after its catch-up): writers going on meanwhile. */
  onView: () => void = () => {};
  readonly viewSession: Session = { id: 'view' };
  readonly warnings: string[] = [];

  readonly stream: ChangeStream = {
    start: { n: 0 },
    head: async () => ({ n: this.n }),
    acknowledge: async (position) => void this.acknowledged.push(position),
    stop: async () => {},
  };

  readonly changes: ChangeSource = {
    open: async (sink) => {
      this.sink = sink;
      return this.stream;
    },
    cleanup: async () => {},
    comparePositions: (a, b) => Number(a.n) - Number(b.n),
    pinsServerLog: true,
  };

  readonly migration = {
    changes: this.changes,
    applyKeys: async (keys: Key[], session?: Session) => void this.applied.push({ keys, ...(session ? { session } : {}) }),
    consistentView: async (catchUp: CatchUp) => {
      await catchUp(this.viewSession);
      this.onView();
      return {
        compareKeys: async (keys: Key[]) => {
          this.viewCompared.push(keys);
          return this.differ(keys, 'view');
        },
        close: async () => {},
        nextBoundary: async () => null,
        checksum: async () => {
          throw new Error('not in these tests');
        },
      };
    },
    compareKeys: async (keys: Key[], session: Session) => {
      this.lockedCompared.push({ keys, session });
      return this.differ(keys, 'lock');
    },
    oldSnapshots: async () => [],
  };

  /** A change to these rows, at the next position. */
  emit(keys: Key[]): void {
    if (!this.sink) throw new Error('the stream is not open');
    this.sink.keys(keys, { n: ++this.n });
  }

  /** Keys applied so far, in order, flattened. */
  get appliedKeys(): Key[] {
    return this.applied.flatMap((a) => a.keys);
  }

  /** A real RunContext and an opened Applier over this migration (which saves no checkpoint). */
  async run(
    options: { report?: Reporter; isTransient?: (error: unknown) => boolean } = {},
  ): Promise<{ ctx: RunContext; applier: Applier; result: MigrateResult }> {
    const { config, makeState } = configure({ chunkTimeMs: 100 });
    const engine = { kind: 'mysql', isTransient: options.isTransient ?? (() => false) } as unknown as Engine;
    const result = { changesApplied: 0, keysCompared: 0, keysComparedAtCutover: 0 } as MigrateResult;
    const report: Reporter = options.report ?? {
      phase() {},
      progress() {},
      info() {},
      warn: (m) => void this.warnings.push(m),
      close() {},
    };
    const ctx = new RunContext(engine, this.migration as unknown as Migration, config, makeState('t', 'ADD x int', 'mysql'), report, result, unsavedRun);
    const applier = new Applier(ctx, null, () => {});
    await applier.open();
    return { ctx, applier, result };
  }
}
