// The queue with trigger capture, on the servers as they come out of the box (no binlog,
// wal_level=replica): the scenarios of support/queue-scenarios.ts, which queue.test.ts runs on the
// change stream.
import { describe, it } from 'vitest';
import { plainDatabases, useDatabase } from './support/fixture.js';
import { killedAndResumed, twoRunners, untilAndResume, windowReopens } from './support/queue-scenarios.js';

describe.each(plainDatabases)('the migration queue on $name, trigger capture', ({ kind, open }) => {
  const db = useDatabase(open, 'qc_t', 'qd_t', 'qk_t', 'qk_t_mirror', 'qu_t', 'qu_t_mirror', 'shadowcut_queue');

  it('never runs an entry twice when two runners start at once', () => twoRunners(db, kind));

  it('a runner killed with SIGKILL takes its stage with it; the next runner resumes it from the checkpoint, once', () => killedAndResumed(db, kind));

  it('stops a copy at --until as a crash would, and the next run resumes it from its checkpoint, once, under writes', () => untilAndResume(db, kind));

  it('holds a copy when its window closes and goes on when it reopens, cutting over inside it, under writes', () => windowReopens(db, kind));
});
