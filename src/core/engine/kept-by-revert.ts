/** How a revert marks the new table it keeps as `<table>__new`: not a dead run's shadow, and never dropped by `shadowcut cleanup`. */
export const KEPT_BY_REVERT = 'shadowcut: the new table, kept by a revert';

/** The comment the kept table gets: the mark, and when. */
export function keptByRevertComment(at: Date): string {
  return `${KEPT_BY_REVERT} on ${at.toISOString()}; drop it when it is no longer needed`;
}
