import type { Pool } from 'mysql2/promise';
import type { ChangeSink, ChangeSource, ChangeStream } from '../../../../core/migrate/change-source.js';
import type { Position } from '../../../../core/primitives.js';
import type { MysqlTarget, ServerZone } from '../../server/connect.js';
import type { MysqlPlan } from '../../schema/plan.js';
import { compareBinlogPositions, openBinlogStream } from './binlog.js';

/** Changes read from the server's binlog as a replica would (ROW format), from a position fixed before the copy. */
export class BinlogSource implements ChangeSource {
  constructor(
    private readonly target: MysqlTarget,
    private readonly zone: ServerZone,
    private readonly pool: Pool,
    private readonly plan: MysqlPlan,
  ) {}

  open(sink: ChangeSink, from: Position | undefined): Promise<ChangeStream> {
    return openBinlogStream(this.target, this.zone, this.pool, this.plan, sink, from);
  }

  /** The binlog is the server's own and a reader holds nothing on it: there is nothing to remove. */
  cleanup(): Promise<void> {
    return Promise.resolve();
  }

  comparePositions(a: Position, b: Position): number {
    return compareBinlogPositions(a, b);
  }
}
