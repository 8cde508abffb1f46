import pg from 'pg';
import { ROLLBACK_AFTER_FAILURE, SEEN_WHERE_AWAITED, ignoreFailure } from '../../../core/engine/errors.js';

/**
 * A connection to a node of a Citus cluster, where a statement's names resolve on every node as they
 * do on the node it is sent to (docs/invariants.md, invariant 22).
 *
 * Citus runs a statement on the workers as text it deparses from the coordinator's plan: every name
 * outside pg_catalog is schema-qualified there, pg_catalog's are not. A worker resolves those under
 * its own session's search_path (the server's default, `"$user", public`), and a function chosen by
 * the best match of its argument types wherever pg_catalog stands: another role's
 * `public.format(text, numeric)` beats `pg_catalog.format(text, VARIADIC "any")` there and runs on
 * every worker with the migrating role's rights, although the coordinator resolved the name in
 * pg_catalog under shadowcut's pinned path. Citus carries a transaction's `SET LOCAL` to each worker
 * the transaction reaches when `citus.propagate_set_commands` is `local`, and to nothing outside a
 * transaction block. So every statement runs in a transaction that has said the coordinator's own
 * search_path with `SET LOCAL`: a statement sent on its own is wrapped in one, a transaction the
 * caller begins says it right after its BEGIN, and again whenever the path changes within it (the
 * user's SQL runs under the user's path: `asUser`). The path is followed by the server's own reports:
 * Citus makes search_path a reported setting.
 *
 * Statements that may not run in a transaction block are sent as they are; none of shadowcut's
 * reaches a distributed table's shards by deparsed text (its DDL Citus carries the path for itself).
 */
export class CitusClient extends pg.Client {
  /** The node's current search_path, as the server last reported it; null until it has. */
  private path: string | null = null;
  /** The path the open transaction has carried to the workers; null outside one. */
  private carried: string | null = null;
  private ready = false;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(config?: string | pg.ClientConfig) {
    super(config);
    this.connection.on('parameterStatus', (message: { parameterName: string; parameterValue: string }) => {
      if (message.parameterName === 'search_path') this.path = message.parameterValue;
    });
    const plain = super.query.bind(this) as (config: string | pg.QueryConfig, values?: unknown[]) => Promise<pg.QueryResult>;
    this.query = ((config: string | pg.QueryConfig | pg.Submittable, values?: unknown, callback?: unknown) => {
      // A streaming query (a cursor) keeps its own protocol; shadowcut sends none through this client.
      if (typeof (config as pg.Submittable).submit === 'function') return plain(config as pg.QueryConfig, values as unknown[]);
      const done = typeof values === 'function' ? values : typeof callback === 'function' ? callback : null;
      const params = Array.isArray(values) ? values : undefined;
      const text = typeof config === 'string' ? config : (config as pg.QueryConfig).text;
      // One statement at a time, each seeing the transaction state the one before it left.
      const result = this.tail.then(() => this.carrying(text, () => plain(config as pg.QueryConfig, params)));
      this.tail = result.then(undefined, ignoreFailure(SEEN_WHERE_AWAITED));
      if (!done) return result;
      result.then(
        (r) => (done as (e: Error | null, r?: pg.QueryResult) => void)(null, r),
        (e: Error) => (done as (e: Error | null) => void)(e),
      );
      return undefined;
    }) as pg.Client['query'];
  }

  private async carrying(text: string, run: () => Promise<pg.QueryResult>): Promise<pg.QueryResult> {
    if (!this.ready) await this.prepare();
    const status = this.getTransactionStatus();
    if (status === 'I' && OWN_BLOCK.test(text)) {
      const result = await run();
      if (this.getTransactionStatus() === 'T') await this.carry();
      return result;
    }
    if (status === 'T') {
      if (this.carried !== this.path) await this.carry();
      return this.settled(await run());
    }
    if (status !== 'I' || OUTSIDE_BLOCK.test(text)) return this.settled(await run());
    await super.query('BEGIN');
    try {
      await this.carry();
      const result = await run();
      await super.query('COMMIT');
      return this.settled(result);
    } catch (error) {
      await super.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
      this.carried = null;
      throw error;
    }
  }

  /** Once per connection: Citus carries SET LOCAL to the workers only when told to. */
  private async prepare(): Promise<void> {
    await super.query(`SET citus.propagate_set_commands = 'local'`);
    if (this.path === null) throw new Error('the Citus node did not report its search_path; shadowcut cannot carry it to the workers');
    this.ready = true;
  }

  /** The node's current path, said again with SET LOCAL so that Citus sends it to every worker in the transaction. */
  private async carry(): Promise<void> {
    const path = this.path!;
    if (!PATH_LIST.test(path)) throw new Error(`an unexpected search_path on the Citus node: ${JSON.stringify(path)}`);
    await super.query(`SET LOCAL search_path = ${path === '""' ? "''" : path}`);
    this.carried = path;
  }

  private settled(result: pg.QueryResult): pg.QueryResult {
    if (this.getTransactionStatus() === 'I') this.carried = null;
    return result;
  }
}

/** A transaction the caller opens. */
const OWN_BLOCK = /^\s*(BEGIN|START\s+TRANSACTION)\b/i;

/**
 * What is sent as it is outside a transaction: transaction control and session settings (a session
 * SET is not carried to the workers, nor needed there), and what PostgreSQL or Citus refuses in a
 * transaction block.
 */
const OUTSIDE_BLOCK =
  /^\s*(COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION|SET|RESET|SHOW|DISCARD|VACUUM|CHECKPOINT|CALL|LISTEN|UNLISTEN|(CREATE|DROP|ALTER)\s+(DATABASE|TABLESPACE|SYSTEM|SUBSCRIPTION))\b|\bCONCURRENTLY\b|\bpg_create_logical_replication_slot\b/i;

/** A search_path as the server reports it: names, quoted or plain, separated by commas. */
const PATH_LIST = /^\s*("([^"]|"")*"|[^",\s;]+)(\s*,\s*("([^"]|"")*"|[^",\s;]+))*\s*$/;
