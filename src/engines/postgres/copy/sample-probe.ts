import type pg from 'pg';
import { UserError, ALWAYS_ROLLED_BACK, ignoreFailure } from '../../../core/engine/errors.js';
import type { SampleProbe } from '../../../core/engine/ports/preflight.js';
import type { Key } from '../../../core/engine/types.js';
import { errorCode } from '../server/errors.js';
import { helperNames } from '../server/helper-names.js';
import { qualified } from '../server/sql.js';
import type { Client } from '../server/connect.js';
import { inspectTable } from '../schema/inspect.js';
import type { PgDetail } from '../schema/plan.js';
import { buildShadow } from '../schema/shadow.js';
import { indexStatements, type ShadowIndex } from '../schema/shadow-indexes.js';
import { digest, planSides } from './checksum.js';
import { Copier } from './copy.js';

/** What a table spread over several servers (a Citus table) does as its run does: the shadow distributed beside it, the chunks' boundaries asked of the nodes. */
export interface SpreadProbe {
  distribute(client: Client, name: string): Promise<void>;
  nextBoundary(after: Key | null, rows: number): Promise<Key | null>;
}

/**
 * A probe made as `createShadow` makes the shadow (the ALTER applied, the secondary indexes left
 * off when the run defers them), written by the run's own chunk statements, then its indexes built
 * and both sides digested with the verification's own SQL. A logged table, as the shadow is (its
 * WAL is part of the copy's cost), in one transaction that `close` rolls back: nothing stays. The
 * probe (named as prepare's) is seen by that transaction only, so its chunks run one after another there; the original
 * is digested on a session of its own, at the same time as the probe, as the run's view does.
 */
export async function openPgSampleProbe(pool: pg.Pool, d: PgDetail, alter: string, spread?: SpreadProbe): Promise<SampleProbe> {
  const client = await pool.connect();
  // As prepare's probe: the shadow's name, or the table's own slot name (free among tables) while a
  // shadow exists, so the probe never meets a table of the user's (nor a set's other probes).
  const shadowExists = (await client.query('SELECT to_regclass($1) IS NOT NULL AS e', [qualified(d.schema, d.shadow)])).rows[0].e === 't';
  const name = shadowExists ? helperNames(d.schema, d.name).slot : d.shadow;
  const close = async () => {
    await client.query('ROLLBACK').catch(ignoreFailure(ALWAYS_ROLLED_BACK));
    client.release();
  };
  let copier: Copier;
  let built: ShadowIndex[];
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL lock_timeout = 2000');
    // Made as the run makes its shadow, so that the estimate times the same work.
    const keyless = d.keyIndex !== undefined;
    const layout = await buildShadow(
      client,
      await inspectTable(client, d.schema, d.name),
      alter,
      name,
      keyless ? 'all' : d.deferIndexes ? 'secondary' : 'none',
      null,
    );
    // A Citus table's probe is distributed beside it, as the run's shadow is: each chunk then runs on the nodes.
    await spread?.distribute(client, name);
    copier = new Copier({ ...d, shadow: name, shadowKey: layout.shadowKey, columns: layout.columns }, pool);
    copier.keyless = keyless;
    built = [...(keyless ? [layout.keyIndex] : []), ...(d.deferIndexes ? layout.indexes : [])];
  } catch (error) {
    await close();
    throw error;
  }
  const [original, shadow] = planSides(copier);
  return {
    nextBoundary: (after, rows) => (spread ? spread.nextBoundary(after, rows) : copier.nextBoundary(client, after, rows)),
    copy: (range) =>
      copier.copyOn(client, range).catch((error: Error) => {
        // Data exceptions (22) and integrity violations (23): rows the new schema cannot take.
        if (!/^2[23]/.test(errorCode(error) ?? '')) throw error;
        throw new UserError(`the copy fails on the table's first rows: ${error.message.replaceAll(name, d.name)}`);
      }),
    async buildIndexes() {
      // In the probe's own transaction: SET LOCAL of one build holds for the next, which sets its own.
      for (const index of built) for (const sql of indexStatements(index)) await client.query(sql);
      copier.keyless = false;
      return built.map((index) => index.shadow);
    },
    // The run's afterCopy ends with it; it reads a sample of fixed size, whatever the table's.
    settle: () => client.query(`ANALYZE ${qualified(d.schema, name)}`).then(() => {}),
    digest: async (side, range) => {
      if (side === 'shadow') return void (await digest(client, shadow, range));
      const reader: Client = await pool.connect();
      try {
        await digest(reader, original, range);
      } finally {
        reader.release();
      }
    },
    close,
  };
}
