import type { ComparisonRequest, RowComparison } from '../../compare/types.js';

/** `shadowcut verify`: the engine reads and digests the rows; core walks the chunks and reports. */
export interface EngineComparison {
  /** `shadowcut verify`: the table against an expectation or another table (core/compare); throws UserError for bad input. */
  openComparison(request: ComparisonRequest): Promise<RowComparison>;
}
