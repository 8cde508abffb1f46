/**
 * shadowcut's own tables beside the user's that core keeps (the queue, every table's timeline):
 * core says what they hold and decides what a row may say (core/queue/queue-table.ts,
 * core/history/store.ts); the engine makes them in its own SQL, and proves each one shadowcut's own
 * before anything is read from it or written into it (docs/invariants.md, invariant 9), since
 * another account could have made one of that name first.
 */
export interface EngineHelperTables {
  readonly helperTables: HelperTables;
}

export interface HelperTables {
  /** The helper laid out as `layout` in `place` (a database on MySQL, a schema on PostgreSQL), or where the engine keeps its database-wide ones (the URL's database; `public`). */
  table(layout: HelperLayout, place?: string): HelperTable;
  /** Whether helper `name` exists in `place` (as above), after refusing one that is not shadowcut's own (HelperRefusedError). */
  check(name: string, place?: string): Promise<boolean>;
  /** Where the helpers of `table` (as the operator names it) live: its database or its schema. */
  placeOf(table: string): string;
  /** The table's own helpers (its checkpoint, its heartbeat), in `placeOf(table)`; none for a name too long to derive them from. */
  helpersOf(table: string): string[];
  /** The server's clock. */
  now(): Promise<Date>;
  /** Runs `fn` holding the server lock `name` of this database (one holder at a time), waiting at most 30 s for it. */
  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** A helper table's columns, in words each engine turns into its own types. */
export interface HelperLayout {
  name: string;
  /** What the table is for: its comment, after the mark that says it is shadowcut's. */
  purpose: string;
  /** In order; the first is the key, a `serial`. */
  columns: HelperColumn[];
  /** An index the rows are looked up by (named `name`, or `<table>_<name>` where index names are per schema). */
  index?: { name: string; columns: string[] };
}

export interface HelperColumn {
  name: string;
  /**
   * `serial`: the key, numbered by the server; `text`: at most `length` characters when given;
   * `document`: JSON that shadowcut wrote (compared as JSON where the engine stores it as such);
   * `instant`: a UTC time, written and read as ISO text; `count`: a 64-bit integer.
   */
  type: 'serial' | 'text' | 'document' | 'instant' | 'count';
  length?: number;
  nullable?: boolean;
  /** An instant set to the server's clock by every insert and update. */
  stamped?: boolean;
  /** Said on the column, where the engine keeps such notes (MySQL). */
  note?: string;
}

/** Values by column name; an instant as ISO text. A `where` never holds null. */
export type HelperRow = Record<string, string | number | null>;

/** A row as read: every column as text (a key as its digits, an instant as ISO in UTC, a document as JSON). */
export type StoredRow = Record<string, string | null>;

/**
 * One helper table. Reads and writes go to a table proven shadowcut's own: proven at each statement
 * on PostgreSQL, where its owner and grants are what keep other roles out; on MySQL, where any
 * account with the database's rights can write it whatever is proven, when it is made and read, and
 * what core reads back from it is sealed.
 */
export interface HelperTable {
  /** The table as a sealed document names it: with its database (`shop.shadowcut_queue`, `shop.public.shadowcut_queue`). */
  name(): Promise<string>;
  /** Makes the table, marked, when it is missing, and proves it shadowcut's own either way. */
  ensure(): Promise<void>;
  /** The rows whose columns equal `where` (all rows for `{}`), in the key's order; none when there is no table yet. */
  select(where: HelperRow): Promise<StoredRow[]>;
  /** Inserts `row` and, in the same transaction, sets what `complete` gives for its new key, before anyone sees the row; returns the key. */
  insert(row: HelperRow, complete?: (id: number) => HelperRow): Promise<number>;
  /** Sets `set` (and the stamped columns) in the rows matching `where`; returns how many matched. */
  update(where: HelperRow, set: HelperRow): Promise<number>;
}
