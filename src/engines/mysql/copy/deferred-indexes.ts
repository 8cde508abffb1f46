import { galeraNode } from '../server/galera-node.js';
import { failedAs } from '../../../core/engine/errors.js';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { DeferIndexes } from '../../../core/engine/types.js';
import { retryBounded } from '../../../core/engine/retry/retry.js';
import { ident, qualified } from '../server/sql.js';
import type { DeferredIndex } from '../schema/plan.js';

/**
 * The indexes worth building after the copy: plain non-unique keys. Unique keys stay, so a duplicate
 * is caught by the row that brings it, as the native ALTER would; FULLTEXT and SPATIAL stay, because
 * adding them later is not online. A key that is the only index on the AUTO_INCREMENT column stays,
 * because the server refuses such a table without it.
 */
export function deferrableIndexes(createSql: string): DeferredIndex[] {
  const lines = createSql.split('\n');
  const autoIncrement = lines.map((line) => /^\s*`((?:[^`]|``)+)` .*\bAUTO_INCREMENT\b/.exec(line)?.[1]).find((name) => name !== undefined);
  const found: DeferredIndex[] = [];
  for (const line of lines) {
    const match = /^\s*KEY `((?:[^`]|``)+)` \(`((?:[^`]|``)+)`/.exec(line);
    if (!match) continue;
    if (autoIncrement !== undefined && match[2] === autoIncrement) continue;
    found.push({ name: match[1].replaceAll('``', '`'), definition: line.trim().replace(/,$/, '') });
  }
  return found;
}

/**
 * `auto` defers unless the build would hold up replicas: an ALTER reaches a replica as one event,
 * replayed in line with everything else, so a long build there is replication lag nothing can
 * throttle. Where the server can log the build in two phases (MariaDB's binlog_alter_two_phase, set
 * for the build's own session), a replica with parallel threads starts building when the primary
 * does, so the build costs it about what it costs the primary, and the copy gains what maintaining
 * the index row by row would have cost (the cut-over then waits for the replicas' lag, as always).
 * Elsewhere `auto` defers only on a server with no replica attached. When unsure, it does not.
 */
export async function shouldDefer(pool: Pool, mode: DeferIndexes): Promise<{ defer: boolean; why: string }> {
  // On Galera a DDL runs in total order: the shadow's index build would stop every node's commits for its whole length.
  if (await galeraNode(pool)) return { defer: false, why: 'a Galera cluster builds an index in total order, holding every node for its length' };
  if (mode !== 'auto') return { defer: mode === 'on', why: `--defer-indexes ${mode}` };
  const twoPhase = await twoPhaseAlter(pool);
  if (twoPhase === 'on') return { defer: true, why: 'binlog_alter_two_phase is ON' };
  const replicas = await attachedReplicas(pool);
  if (replicas === 0) return { defer: true, why: 'no replica is attached' };
  const attached = replicas === null ? 'replicas may be attached' : `${replicas} replica(s) attached`;
  if (twoPhase === 'settable') {
    return {
      defer: true,
      why:
        `${attached}: the build is logged in two phases (binlog_alter_two_phase for its session), so a replica ` +
        'with slave_parallel_threads > 0 builds alongside the primary; one without replays it after, lagging by the build',
    };
  }
  return {
    defer: false,
    why: replicas === null ? 'the replicas attached could not be listed' : `${attached} and the server cannot log an ALTER in two phases`,
  };
}

/** Whether the server logs ALTERs in two phases already, could for one session, or cannot (MySQL, MariaDB before 10.8). */
async function twoPhaseAlter(pool: Pool): Promise<'on' | 'settable' | 'no'> {
  const [rows] = await pool
    .query<RowDataPacket[]>('SELECT @@GLOBAL.binlog_alter_two_phase AS v')
    .catch(failedAs([[]], 'a server without the variable (MySQL, MariaDB before 10.8) cannot log an ALTER in two phases'));
  if (rows.length === 0) return 'no';
  return Number(rows[0].v) === 1 ? 'on' : 'settable';
}

async function attachedReplicas(pool: Pool): Promise<number | null> {
  // The statement's name changed across versions; the first one the server knows answers.
  for (const sql of ['SHOW REPLICAS', 'SHOW REPLICA HOSTS', 'SHOW SLAVE HOSTS']) {
    const rows = await pool.query<RowDataPacket[]>(sql).then(
      ([r]) => r,
      () => null,
    );
    if (rows) return rows.length;
  }
  return null;
}

export async function dropDeferred(pool: Pool, database: string, table: string, indexes: DeferredIndex[]): Promise<void> {
  if (indexes.length === 0) return;
  const drops = indexes.map((i) => `DROP INDEX ${ident(i.name)}`).join(', ');
  await pool.query(`ALTER TABLE ${qualified(database, table)} ${drops}`);
}

/**
 * Adds the deferred indexes still missing, in one ALTER. A resumed run may find some built, or still
 * being built by the dead run's statement, which the server finishes on its own: a name that turns
 * out to exist by then is built, so the missing ones are looked up again.
 */
export function buildDeferred(pool: Pool, database: string, table: string, indexes: DeferredIndex[]): Promise<void> {
  // Twice at most: the second attempt looks again, and adds only what is missing by then.
  return retryBounded({ attempts: 2, retryable: (error) => (error as { code?: string }).code === 'ER_DUP_KEYNAME' }, async () => {
    const missing = await missingIndexes(pool, database, table, indexes);
    if (missing.length === 0) return;
    const session = await pool.getConnection();
    try {
      await twoPhaseForSession(session);
      await session.query(`ALTER TABLE ${qualified(database, table)} ${missing.map((i) => `ADD ${i.definition}`).join(', ')}`);
    } finally {
      // Not back to the pool: its two-phase setting would reach whatever ALTER the pool runs next.
      session.destroy();
    }
  });
}

/**
 * Replicas with parallel threads start the build when the primary does (START ALTER), not after
 * it has finished. A server without the variable (MySQL, older MariaDB) logs the ALTER whole.
 */
async function twoPhaseForSession(session: PoolConnection): Promise<void> {
  await session.query('SET SESSION binlog_alter_two_phase = 1').catch((error: { code?: string }) => {
    if (error.code !== 'ER_UNKNOWN_SYSTEM_VARIABLE') throw error;
  });
}

async function missingIndexes(pool: Pool, database: string, table: string, indexes: DeferredIndex[]): Promise<DeferredIndex[]> {
  if (indexes.length === 0) return [];
  const [rows] = await pool.query<RowDataPacket[]>(`SHOW INDEX FROM ${qualified(database, table)}`);
  const present = new Set(rows.map((r) => String(r.Key_name)));
  return indexes.filter((i) => !present.has(i.name));
}
