/**
 * What core says about a server in that server's own words: core decides what to tell the operator
 * and when, and the engine says how its server calls the thing (a session, an error, a grant), so
 * no message in core has to know which engine runs it.
 */
export interface ServerTerms {
  /** What the server calls a session in a message: PostgreSQL's `pid`, MySQL's `connection`. */
  readonly session: string;
  /**
   * What a transaction whose snapshot is older than the swap does when it first reads `table` after
   * it (core/migrate/cutover/old-snapshots.ts); `their` is `its` for one such transaction, `their` for several.
   */
  oldSnapshotHarm(table: string, their: 'its' | 'their'): string;
  /** How the role comes to see other sessions' transactions, said when `Migration.oldSnapshots` cannot list them. */
  readonly seeingTransactions: string;
  /** Why a table's identity (`RestoreTarget.backupIdentity`) may not be readable, said when it is not. */
  readonly identityUnreadable: string;
}
