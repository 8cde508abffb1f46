/** What `shadowcut plan` asks an engine about the table and the server. */

export interface TableSize {
  /** The server's estimate, not a count. */
  rows: number;
  dataBytes: number;
  indexBytes: number;
}

/** Free space on the filesystem holding the server's data, or why it cannot be known from here. */
export type DiskSpace = { path: string; availableBytes: number } | { unknown: string };

/** Rows copied through the copy's own mapping into a probe with the new schema, and read back, timed. */
export interface CopySample {
  rows: number;
  copyMs: number;
  /** One checksum-like read of the sample: verification reads both tables once per round. */
  readMs: number;
}
