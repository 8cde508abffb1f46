/**
 * What lets a killed run go on where it stopped: the checkpoint kept beside the table, and what a
 * resumed run must learn of the server before it trusts that checkpoint (did the swap commit, is the
 * table still the one planned on, what did a cut-over attempt leave on the shadow).
 */
export interface MigrationResume {
  /** Store the runner's checkpoint (opaque text) next to the table; removed by cleanup. */
  saveCheckpoint(checkpoint: string): Promise<void>;
  /** True when the swap has committed (a resumed run then only cleans up). */
  swapped(): Promise<boolean>;
  /**
   * For a resume: whether the table the plan names is another than the one it was planned on
   * (dropped and made again, or rebuilt, since), by the identity the plan recorded (PostgreSQL's
   * OID, InnoDB's table ids). False once the swap has committed, when the name holds the new table,
   * and for a plan that recorded none (a checkpoint of an older version).
   */
  tableReplaced(): Promise<boolean>;
  /** A resumed run: undo what the dead run's cut-over attempt may have left on the shadow. */
  resumeShadow?(): Promise<void>;
}
