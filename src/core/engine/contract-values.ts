/**
 * The values the engine contract (types.ts) and the command folders' types share: keys, positions,
 * ranges, check results. Kept apart and importing nothing, so those types can use them without an
 * import circle through types.ts.
 */
/** One column value of a key as it travels through the client: the server's text or bytes, never a lossy JS type. */
export type KeyValue = string | number | Buffer | null;

/** The values of the chosen unique key's columns, in key order. */
export type Key = KeyValue[];

/** An engine-specific, JSON-serialisable position in the change stream (binlog file/offset, LSN). */
export type Position = Record<string, string | number>;

export interface CheckResult {
  name: string;
  ok: boolean;
  /** What was found; for a failed check, what is wrong and how to fix it. */
  message: string;
}

/** A half-open keyset range: rows with key > after (or from the start) and key <= upTo (or to the end). */
export interface KeyRange {
  after: Key | null;
  upTo: Key | null;
}

export interface RangeDigest {
  rows: number;
  digest: string;
}

/** An engine connection the runner passes back to the engine, e.g. one holding the cut-over lock. */
export interface Session {
  readonly id: string;
}
