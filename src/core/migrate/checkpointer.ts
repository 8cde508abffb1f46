import type { Checkpoint, RevertWindowState } from '../engine/state/checkpoint.js';
import type { RunClaim } from '../run/claim.js';
import type { Planned, RunContext } from './context.js';
import type { MigrationResume } from '../engine/ports/resume.js';
import type { Key, Position } from '../engine/types.js';

export interface Resumable {
  copiedUpTo: Key | null;
  copyDone: boolean;
  position: Position;
}

/**
 * Writes the checkpoint at most once a second, and at phase boundaries (`force`). Each save also
 * confirms the run's claim on the table, which keeps the claim's session from idling out.
 */
export class Checkpointer {
  private last = 0;
  /** Set once the swap has committed. */
  cutOver = false;
  /** Set for a run with a revert window. */
  revertWindow: RevertWindowState | null = null;

  constructor(
    private readonly ctx: RunContext<Planned & MigrationResume>,
    private readonly claim: RunClaim,
    private readonly resumable: () => Resumable,
  ) {}

  async save(force = false): Promise<void> {
    if (!force && Date.now() - this.last < 1000) return;
    this.last = Date.now();
    await this.confirmClaim();
    const { state, plan, result } = this.ctx;
    const checkpoint: Omit<Checkpoint, 'owner'> = {
      version: 1,
      alter: plan.alter,
      phase: state.status.phase,
      plan,
      ...this.resumable(),
      rowsCopied: result.rowsCopied,
      changesApplied: result.changesApplied,
      startedAt: state.status.startedAt,
      savedAt: new Date().toISOString(),
      ...(this.cutOver ? { cutOver: true } : {}),
      ...(this.revertWindow ? { revertWindow: this.revertWindow } : {}),
    };
    const sealed = this.ctx.run.seal(checkpoint);
    await this.ctx.transient('saving the checkpoint', () => this.ctx.migration.saveCheckpoint(sealed.text));
    sealed.saved();
  }

  confirmClaim(): Promise<void> {
    return this.ctx.transient('confirming the run lock', () => this.claim.confirm());
  }
}
