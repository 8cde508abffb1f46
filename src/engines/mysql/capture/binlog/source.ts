import type { ChangeSink, ChangeSource, ChangeStream } from '../../../../core/engine/ports/change-source.js';
import type { Position } from '../../../../core/engine/contract-values.js';
import type { MysqlPlan } from '../../schema/plan.js';
import { compareBinlogPositions } from './binlog.js';
import type { BinlogHub } from './hub.js';

/**
 * Changes read from the server's binlog as a replica would (ROW format), from a position fixed before
 * the copy; through a reader of the table's own, or the one its set shares (`hub.ts`).
 */
export class BinlogSource implements ChangeSource {
  constructor(
    private readonly hub: BinlogHub,
    private readonly plan: MysqlPlan,
  ) {}

  open(sink: ChangeSink, from: Position | undefined): Promise<ChangeStream> {
    return this.hub.subscribe(this.plan, sink, from);
  }

  /** The binlog is the server's own and a reader holds nothing on it: there is nothing to remove. */
  cleanup(): Promise<void> {
    return Promise.resolve();
  }

  comparePositions(a: Position, b: Position): number {
    return compareBinlogPositions(a, b);
  }
}
