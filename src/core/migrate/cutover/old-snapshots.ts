import type { Applier } from '../applier.js';
import type { Planned, RunContext } from '../context.js';
import type { MigrationCutover } from '../../engine/ports/cutover.js';
import { sleep } from '../../engine/retry/backoff.js';
import { formatDuration } from '../../run/duration.js';
import { LockTimeoutError, UserError } from '../../engine/errors.js';
import type { OldSnapshotRecord } from '../../run/run-state.js';
import type { OldSnapshot, Session } from '../../engine/types.js';

const LOOK_EVERY_MS = 500;
/** The warning naming them is repeated this often at most. */
const WARN_EVERY_MS = 10_000;
const LOCKED_LOOK_EVERY_MS = 10;

/**
 * A transaction whose snapshot is older than the swap reads the new table wrongly once it first opens
 * it after the swap: it misses the rows written to the shadow since its snapshot, or the server fails
 * it (how, each engine words in `ServerTerms.oldSnapshotHarm`). The lock does not keep such a reader out: it holds no
 * lock on the table until it touches it. So the cut-over waits for the ones holding a snapshot when
 * it comes (those that start later are not waited for, as CREATE INDEX CONCURRENTLY does, or a busy
 * server would never let it through), then does what the operator chose; and looks again under the
 * lock, for one that took its snapshot in between.
 */
export class OldSnapshots {
  /** Let through by the policy or the operator: not waited for again. */
  private readonly accepted = new Set<string>();
  private blindWarned = false;

  constructor(
    private readonly ctx: RunContext<Planned & MigrationCutover>,
    private readonly applier: Applier,
    /** Holds the cut-over, the shadow kept in sync, until `shadowcut cutover`; parity proven again after. */
    private readonly postpone: (why: string) => Promise<void>,
  ) {}

  /** Before the cut-over lock: wait, within --old-snapshot-wait, then the policy for those left. */
  async settle(): Promise<void> {
    let operatorAsked = false;
    for (;;) {
      const left = await this.waitOut();
      if (left.length === 0) return;
      const policy = this.ctx.config.oldSnapshots;
      if (policy === 'fail') {
        throw new UserError(
          `${this.describe(left)} still ${left.length === 1 ? 'holds a snapshot' : 'hold snapshots'} older than the cut-over after --old-snapshot-wait ` +
            `${formatDuration(this.ctx.config.oldSnapshotWaitMs)}, and would ${this.consequence(left.length)}; nothing was swapped ` +
            `(end ${left.length === 1 ? 'it' : 'them'}, raise --old-snapshot-wait, or choose --old-snapshots postpone or proceed)`,
        );
      }
      if (policy === 'proceed' || operatorAsked) {
        const why = operatorAsked ? '"shadowcut cutover" was asked' : '--old-snapshots proceed';
        this.ctx.report.warn(`cutting over under ${this.describe(left)} (${why}): ${left.length === 1 ? 'it' : 'they'} will ${this.consequence(left.length)}`);
        for (const reader of left) this.accepted.add(reader.transaction);
        this.record(left, 'cut over under it');
        return;
      }
      await this.postpone(
        `${this.describe(left)} still ${left.length === 1 ? 'holds a snapshot' : 'hold snapshots'} older than the cut-over ` +
          `(--old-snapshots postpone); "shadowcut cutover" waits for them once more, then cuts over under those left`,
      );
      operatorAsked = true;
    }
  }

  /**
   * Under the cut-over lock, on its session: one that took its snapshot after `settle` looked gets the
   * rest of the lock's budget to end; past `deadline` the attempt gives up, to be retried.
   */
  async underLock(session: Session, deadline: number): Promise<void> {
    let left = (await this.look(session)) ?? [];
    while (left.length > 0) {
      if (Date.now() >= deadline) {
        this.record(left, 'waiting');
        throw new LockTimeoutError(`${this.describe(left)} took a snapshot before the swap and still holds it`);
      }
      await sleep(LOCKED_LOOK_EVERY_MS);
      left = still(left, (await this.look(session)) ?? []);
    }
  }

  /** Just before the lock: the look under it can be made at once (`Migration.readyLockedLook`). */
  async quiet(): Promise<void> {
    await this.ctx.migration.readyLockedLook?.();
  }

  /** Waits for the snapshots held now to be released; returns those still held when the wait is up. */
  private async waitOut(): Promise<OldSnapshot[]> {
    const { config, report } = this.ctx;
    let left = await this.lookBefore();
    const deadline = Date.now() + config.oldSnapshotWaitMs;
    let warned = 0;
    while (left.length > 0) {
      this.record(left, 'waiting');
      if (Date.now() >= deadline) return left;
      if (Date.now() - warned >= WARN_EVERY_MS) {
        warned = Date.now();
        report.warn(`the cut-over waits for ${this.describe(left)}: a snapshot older than the swap would ${this.consequence(1)}`, {
          oldSnapshots: left.length,
        });
      }
      await this.applier.waitApplying(Math.min(LOOK_EVERY_MS, deadline - Date.now()));
      this.ctx.checkAbort();
      left = still(left, await this.lookBefore());
    }
    return left;
  }

  /** Before the lock: what was waited for and is no longer there has ended. */
  private async lookBefore(): Promise<OldSnapshot[]> {
    const now = (await this.look()) ?? [];
    for (const record of this.ctx.state.status.oldSnapshots) {
      if (record.outcome === 'waiting' && still([record], now).length === 0) record.outcome = 'ended';
    }
    return now;
  }

  private async look(session?: Session): Promise<OldSnapshot[] | null> {
    const found = await this.ctx.migration.oldSnapshots(session);
    if (found === null) {
      if (!this.blindWarned) {
        this.blindWarned = true;
        this.ctx.report.warn(
          `other sessions' transactions cannot be seen (${this.ctx.engine.terms.seeingTransactions}), so readers older than the cut-over are not waited for`,
        );
      }
      return null;
    }
    return found.filter((r) => !this.accepted.has(r.transaction));
  }

  private record(readers: OldSnapshot[], outcome: OldSnapshotRecord['outcome']): void {
    const records = this.ctx.state.status.oldSnapshots;
    for (const reader of readers) {
      const known = records.find((r) => r.transaction === reader.transaction);
      if (known) known.outcome = outcome;
      else records.push({ ...reader, outcome });
    }
  }

  private describe(readers: OldSnapshot[]): string {
    const label = this.ctx.engine.terms.session;
    const one = (r: OldSnapshot) => {
      const who = [r.user, r.client, r.since && `since ${r.since}`].filter(Boolean).join(', ');
      const doing = [r.state, r.query].filter(Boolean).join(': ');
      return `${label} ${r.session} (${[who, doing].filter(Boolean).join('; ')})`;
    };
    const shown = readers.slice(0, 3).map(one).join(', ');
    const more = readers.length > 3 ? ` and ${readers.length - 3} more` : '';
    return `${readers.length} transaction(s): ${shown}${more}`;
  }

  private consequence(readers: number): string {
    return this.ctx.engine.terms.oldSnapshotHarm(this.ctx.plan.table, readers === 1 ? 'its' : 'their');
  }
}

/** Those of `readers` whose transaction `now` still lists. */
function still(readers: OldSnapshot[], now: OldSnapshot[]): OldSnapshot[] {
  return readers.filter((r) => now.some((n) => n.transaction === r.transaction && n.session === r.session));
}
