/**
 * Where a run stands: `status`, the --json phase lines, the report page and the queue's runner all
 * name it so. A migration goes checks, setup, copy, catch-up, verify, [postponed], [revert capture],
 * cutover, cleanup, [revert window, revert], done; in place, checks, in-place, done; a backfill,
 * checks, setup, backfill, cleanup, done.
 */
export type Phase =
  | 'checks'
  | 'setup'
  | 'copy'
  | 'catch-up'
  | 'verify'
  | 'postponed'
  | 'revert capture'
  | 'cutover'
  | 'cleanup'
  | 'revert window'
  | 'revert'
  | 'in-place'
  | 'backfill'
  | 'done';
