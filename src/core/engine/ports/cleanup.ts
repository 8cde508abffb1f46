/** The end of every run, whatever its outcome: the helper objects removed, in the engine's own order. */
export interface MigrationCleanup {
  /**
   * Remove helper objects: which ones core decides from these options (`cleanupSteps` in
   * core/engine/cleanup-steps.ts), and the engine removes them. After a successful cut-over the old
   * table is kept unless `dropOld`. `keepCheckpoint`: the checkpoint table stays (a revert window's
   * follows this run's). A run that did not cut over also removes the reverse capture (log and
   * triggers) if it installed one. A reverse migration's cleanup never drops its shadow (the old
   * table): without `cutOver` it only stops its streams.
   */
  cleanup(options: CleanupOptions): Promise<void>;
}

/** What `Migration.cleanup` is asked: whether the swap happened, and what the run was told to keep. */
export interface CleanupOptions {
  dropOld: boolean;
  cutOver: boolean;
  keepCheckpoint?: boolean;
  /** Leave the set's change stream (PostgreSQL's slot and publication): other members of the set follow it. */
  keepSetStream?: boolean;
}
