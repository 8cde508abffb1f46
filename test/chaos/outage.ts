/**
 * The server restarted under the tester (`--servers own`, the "server restarted" fault): when it was
 * away, so that the reader's and the writers' oracle excuses what the restart itself did to them (an
 * error, a query that waited for crash recovery) and nothing else; and sessions that take a new
 * connection once theirs was lost with the server, as an application's pool does.
 */
/** A connection of the tester's: the writers', the reader's. */
export interface Session {
  query(sql: string): Promise<unknown[][]>;
  close(): Promise<void>;
}

/** After the server answers again: connections made anew, the first queries after crash recovery. */
const GRACE_MS = 1500;

export class Outages {
  private readonly spans: [number, number][] = [];

  /** The server is going away now; the returned function says it answers again. */
  begin(): () => void {
    const span: [number, number] = [performance.now(), Infinity];
    this.spans.push(span);
    return () => void (span[1] = performance.now());
  }

  /** Whether a query that ran from `from` to `to` (performance.now()) met the outage or its grace. */
  covers(from: number, to: number): boolean {
    return this.spans.some(([down, up]) => from <= up + GRACE_MS && to >= down);
  }
}

/**
 * A session on one connection at a time: a connection lost (`lost`) is let go with the error, and
 * the next query takes a new one. Outside a restart no connection of the tester's is ever lost, so
 * this is the one it always had.
 */
export async function reconnecting<C>(
  open: () => Promise<C>,
  run: (conn: C, sql: string) => Promise<unknown[][]>,
  lost: (error: unknown) => boolean,
  end: (conn: C, broken: Error | null) => void,
): Promise<Session> {
  let conn: C | null = await open();
  return {
    async query(sql) {
      conn ??= await open();
      try {
        return await run(conn, sql);
      } catch (error) {
        if (lost(error)) {
          end(conn, error as Error);
          conn = null;
        }
        throw error;
      }
    },
    close: async () => {
      if (conn !== null) end(conn, null);
    },
  };
}
