import type pg from 'pg';
import { UserError, ALWAYS_ROLLED_BACK, ROLLBACK_AFTER_FAILURE, ignoreFailure } from '../../../core/engine/errors.js';
import type { Client } from './connect.js';

/**
 * `fn` in a transaction that is always rolled back (probes: nothing of it may stay), its lock waits
 * bounded. The client is discarded after any failure but a UserError, which is a verdict on the
 * input, not on the connection.
 */
export async function inRolledBackTransaction<T>(pool: pg.Pool, lockTimeoutMs: number, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL lock_timeout = ${lockTimeoutMs}`);
    return await fn(client);
  } catch (error) {
    broken = error instanceof UserError ? undefined : (error as Error);
    throw error;
  } finally {
    await client.query('ROLLBACK').catch(ignoreFailure(ALWAYS_ROLLED_BACK));
    client.release(broken);
  }
}

/** Runs `fn` in one transaction on a pooled connection (READ COMMITTED: each statement sees the latest commits). */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let failure: Error | undefined;
  try {
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    failure = error as Error;
    await client.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
    throw error;
  } finally {
    // Released with its error, the client is discarded: one whose connection broke must never be lent out again.
    client.release(failure);
  }
}
