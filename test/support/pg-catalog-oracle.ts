import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { migrate, type MigrateOptions } from '../../src/core/migrate/runner.js';
import type { MigrationRequest } from '../../src/core/engine/types.js';
import { createPostgresEngine } from '../../src/engines/postgres/index.js';
import { withDatabase } from './database.js';
import { pgPool, pgUrl } from './pg.js';
import { background, runState, waitFor } from './run.js';

/**
 * The catalog oracle (DESIGN invariant 17): two databases on the test server, one for shadowcut and
 * one for a twin that gets the same setup and the server's own ALTER. `difference` compares the
 * `pg_dump --schema-only` of both, object by object, plus what pg_dump leaves out (an INVALID index
 * is not dumped at all), ownership and every right (GRANT and REVOKE, with who granted them) included.
 * Only the documented leftovers are normalised away: the kept tables (`__old`,
 * a revert's `__new`) with their own objects, `shadowcut_history`, and shadowcut's own comments.
 * A kept table's publication membership is not a leftover: the user's publications must not publish it.
 */
export interface CatalogTwins {
  /** The database shadowcut migrates, and its pool. */
  url: string;
  pool: pg.Pool;
  /** The natively altered twin. */
  twinUrl: string;
  twin: pg.Pool;
  /** The same SQL on both databases. */
  setup(sql: string): Promise<void>;
  /** The native ALTER on the twin. */
  alterTwin(table: string, alter: string): Promise<void>;
  /** shadowcut's migrate on the first database (the copy unless `forceCopy: false`). */
  migrate(table: string, alter: string, options?: Partial<MigrateOptions>, request?: Omit<MigrationRequest, 'url' | 'table' | 'alter'>): Promise<unknown>;
  /** migrate with a revert window, then the revert asked once the window is open; throws what the run threw. */
  migrateAndRevert(table: string, alter: string): Promise<void>;
  /** Lines only shadowcut's side has (`shadowcut: ...`) and only the twin has (`native: ...`); empty when equal. */
  difference(kept?: string[]): Promise<string[]>;
  close(): Promise<void>;
}

/** pg_dump of the server's own major version: the one next to the server binaries the scripts use. */
function pgDump(major: number): string {
  const beside = `/usr/lib/postgresql/${major}/bin/pg_dump`;
  if (existsSync(beside)) return beside;
  const found = spawnSync('sh', ['-c', 'command -v pg_dump'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error('pg_dump not found');
  return found;
}

export async function catalogTwins(name: string): Promise<CatalogTwins> {
  const admin = new pg.Client({ connectionString: withDatabase(pgUrl(), 'postgres') });
  await admin.connect();
  const names = [`sc_cat_${name}`, `sc_cat_${name}_twin`];
  let major: number;
  try {
    major = Math.floor(Number((await admin.query('SHOW server_version_num')).rows[0].server_version_num) / 10000);
    for (const db of names) {
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${db}`);
    }
  } finally {
    await admin.end();
  }
  const [url, twinUrl] = names.map((db) => withDatabase(pgUrl(), db));
  const migrateHere: CatalogTwins['migrate'] = async (table, alter, options = {}, request = {}) => {
    const engine = await createPostgresEngine(url);
    try {
      return await migrate(engine, { url, table, alter, ...request }, { execute: true, forceCopy: true, ...options });
    } finally {
      await engine.close();
    }
  };
  const pool = pgPool(url);
  const twin = pgPool(twinUrl);
  // close() drops the databases WITH (FORCE): an idle client it cuts off must not fail the test file.
  for (const p of [pool, twin]) p.on('error', () => {});
  const dump = pgDump(major);

  const entries = async (which: string, on: pg.Pool, kept: string[]) => {
    const run = spawnSync(dump, ['--schema-only', '--no-sync', '-d', which], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (run.status !== 0) throw new Error(`pg_dump failed: ${run.stderr}`);
    // A kept table's own objects go with it: its indexes (`<index>__old`), statistics objects and
    // the sequences its columns own (its constraints are named in their entries with the table).
    const own = kept.length
      ? (
          await on.query(
            `WITH k AS (SELECT to_regclass(k) AS oid FROM unnest($1::text[]) k)
             SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid IN (SELECT oid FROM k)
             UNION SELECT stxname FROM pg_statistic_ext WHERE stxrelid IN (SELECT oid FROM k)
             UNION SELECT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
              WHERE d.classid = 'pg_class'::regclass AND d.refobjid IN (SELECT oid FROM k) AND d.deptype IN ('a', 'i')`,
            [kept],
          )
        ).rows.map((r) => r.name as string)
      : [];
    const keptName = new RegExp(`(^|[\\s.("])(${[...kept, ...own].map((k) => k.replace(/[^\w]/g, '\\$&')).join('|') || '(?!)'})("?)(?=[\\s.(),;]|$)`, 'm');
    const out: string[] = [];
    // Each object's entry starts with pg_dump's "-- Name: ...; Type: ...; Schema: ...; Owner: ..." header.
    for (const block of run.stdout.split(/\n--\n-- (?=(?:Data for )?Name: )/).slice(1)) {
      const [header, ...rest] = block.split('\n');
      const body = rest
        .filter(
          (l) =>
            l !== '--' &&
            l.trim() !== '' &&
            // pg_dump says who granted a right by the session it grants in: kept, so a grant that
            // came back as the owner's instead of its grantor's (WITH GRANT OPTION chains) shows.
            (!l.startsWith('SET ') || l.startsWith('SET SESSION AUTHORIZATION ')) &&
            !l.startsWith('SELECT pg_catalog.set_config') &&
            // The dump's trailer, and the random key of pg_dump's \restrict guard.
            !l.startsWith('-- PostgreSQL database dump') &&
            !/^\\(un)?restrict /.test(l),
        )
        .join('\n')
        .trim();
      const type = /; Type: ([^;]+);/.exec(header)?.[1] ?? '';
      if (/shadowcut_history/.test(block)) continue;
      if (type === 'COMMENT' && /IS 'shadowcut: /.test(body)) continue;
      if (type !== 'PUBLICATION TABLE' && (keptName.test(header.replace(/^Name: /, ' ')) || keptName.test(body))) continue;
      out.push(`${header}\n${body}`);
    }
    // pg_dump leaves out INVALID indexes; the native ALTER keeps one as it is.
    const { rows } = await on.query(
      `SELECT format('-- index %s on %s: valid %s, ready %s, clustered %s', i.indexrelid::regclass, i.indrelid::regclass, i.indisvalid, i.indisready, i.indisclustered) AS line
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND NOT i.indisvalid`,
    );
    for (const r of rows) if (!keptName.test(r.line)) out.push(r.line);
    return out.sort();
  };

  return {
    url,
    pool,
    twinUrl,
    twin,
    async setup(sql) {
      await pool.query(sql);
      await twin.query(sql);
    },
    async alterTwin(table, alter) {
      await twin.query(`ALTER TABLE ${table} ${alter}`);
    },
    migrate: migrateHere,
    async migrateAndRevert(table, alter) {
      const state = runState(table, alter, 'postgres');
      const run = background(migrateHere(table, alter, { state, revertWindowMs: 600_000, lockTimeoutMs: 2000 }));
      await waitFor('the revert window', () => state.status.state === 'revert-window' && state.status.phase === 'revert window', run, 120_000);
      state.revertRequested = true;
      await waitFor('the revert', () => run.settled, null, 120_000);
      if (run.error) throw run.error;
    },
    async difference(kept = []) {
      const [mine, theirs] = [await entries(url, pool, kept), await entries(twinUrl, twin, kept)];
      const lessOf = (a: string[], b: string[]) => {
        const left = [...b];
        return a.filter((x) => {
          const at = left.indexOf(x);
          if (at < 0) return true;
          left.splice(at, 1);
          return false;
        });
      };
      return [...lessOf(mine, theirs).map((e) => `shadowcut: ${e}`), ...lessOf(theirs, mine).map((e) => `native: ${e}`)];
    },
    async close() {
      await pool.end();
      await twin.end();
      const end = new pg.Client({ connectionString: withDatabase(pgUrl(), 'postgres') });
      await end.connect();
      try {
        // A failed run may leave its slot, which keeps its database from being dropped.
        await end.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = ANY ($1) AND NOT active`, [names]);
        for (const db of names) await end.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      } finally {
        await end.end();
      }
    },
  };
}
