/** `shadowcut restore`: the engine reads the catalogs and makes the change; core checks the history and fills the rows. */
export interface EngineRestore {
  /** `shadowcut restore`: the table and a contract's backup as the catalogs describe them (core/restore); throws UserError for bad names. */
  prepareRestore(request: { table: string; backup: string }): Promise<RestoreTarget>;
}

/** A column as the backup's catalog defines it: what restore adds back. */
export interface BackupColumn {
  name: string;
  /** The type (and collation) the server reports for the backup's column, e.g. `varchar(20) COLLATE utf8mb4_bin`. */
  definition: string;
}

/**
 * What an engine finds of a table and the backup a contract kept of it (`prepareRestore`), read from
 * the catalogs only: nothing here is SQL text read from a table. Nothing is changed until
 * `addColumns` or `renameBack`.
 */
export interface RestoreTarget {
  /** Qualified for a person: `db.table`, `schema.table`. */
  readonly table: string;
  readonly backup: string;
  /** The table's columns, or null when there is no table of that name. */
  readonly tableColumns: string[] | null;
  /** The backup's columns in order, or null when it does not exist. */
  readonly backupColumns: BackupColumn[] | null;
  /** The backup's primary key: the table's key when the contract copied it. */
  readonly backupKey: string[];
  readonly backupRows: number;
  /** The backup's identity as the engine's `keptIdentity` words it (compared with what the contract recorded); null when it cannot be read. */
  readonly backupIdentity: string | null;
  /** Throws HelperRefusedError unless the backup is provably shadowcut's (marked, the migrating role's, nothing on it that runs code). */
  checkOwn(): Promise<void>;
  /** The SQL names the fill's statement uses, quoted as the engine quotes them. */
  readonly sql: { table: string; tableAlias: string; backup: string; ident: (name: string) => string };
  /** ADD COLUMN for each, NULL and without a default, waiting at most `lockTimeoutMs` for the table's lock (LockTimeoutError); returns how the server did it. */
  addColumns(columns: BackupColumn[], lockTimeoutMs: number): Promise<string>;
  /** The backup renamed to the table's name (a `--drop-table --backup-to`), waiting at most `lockTimeoutMs` (LockTimeoutError). */
  renameBack(lockTimeoutMs: number): Promise<void>;
}
