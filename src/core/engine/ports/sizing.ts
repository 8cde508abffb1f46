/** How big the table is and how much room the server has, for `plan`'s estimates and the queue's. */
export interface EngineSizing {
  /** The table's estimated rows and its data and index bytes. */
  tableSize(table: string): Promise<TableSize>;
  /** Free space where the server keeps its data, when that can be seen from this host. */
  diskSpace(): Promise<DiskSpace>;
}

export interface TableSize {
  /** The server's estimate, not a count. */
  rows: number;
  dataBytes: number;
  indexBytes: number;
}

/** Free space on the filesystem holding the server's data, or why it cannot be known from here. */
export type DiskSpace = { path: string; availableBytes: number } | { unknown: string };
