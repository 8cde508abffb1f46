import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/core/migrate/runner.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { catalogTwins, type CatalogTwins } from './support/pg-catalog-oracle.js';
import { runCli } from './support/mysql.js';
import { beforeCopying } from './support/wrap.js';
import { waitUntil } from './support/wait.js';

/**
 * Autovacuum and a copy (server/autovacuum.ts): the shadow is copied into with autovacuum off and
 * gets the new table's own settings at the swap, exactly as the native ALTER leaves them; and a
 * worker vacuuming the table does not hold the verification's or the cut-over's brief locks, which
 * give up after lock_timeout, before the server's deadlock check (deadlock_timeout) would cancel it.
 */
let twins: CatalogTwins;
const rows = async (sql: string, values: unknown[] = []) => (await twins.pool.query(sql, values)).rows;
const options = async (table: string, on = twins.pool) =>
  (
    await on.query(
      `SELECT coalesce(array_to_string(c.reloptions, ','), '') AS t, coalesce((SELECT array_to_string(x.reloptions, ',') FROM pg_class x WHERE x.oid = c.reltoastrelid), '') AS toast
         FROM pg_class c WHERE c.oid = $1::regclass`,
      [table],
    )
  ).rows[0] as { t: string; toast: string };

beforeAll(async () => {
  twins = await catalogTwins('autovacuum');
});
afterAll(async () => {
  await twins?.close();
});

describe('PostgreSQL: autovacuum during a copy', () => {
  for (const [title, create, alter] of [
    ['settings of its own', 'WITH (fillfactor = 90, autovacuum_enabled = true, toast.autovacuum_enabled = false)', 'ADD COLUMN w int'],
    ['no settings, an ALTER that sets them', '', 'ADD COLUMN w int, SET (autovacuum_enabled = off, autovacuum_vacuum_scale_factor = 0.05)'],
  ] as const) {
    it(`copies into a shadow with autovacuum off, and the new table has the native ALTER's settings (${title})`, async () => {
      await twins.setup(`DROP TABLE IF EXISTS av_t, av_t__old; CREATE TABLE av_t (id int PRIMARY KEY, v text) ${create};
        INSERT INTO av_t SELECT g, repeat('x', g % 50) FROM generate_series(1, 3000) g`);
      let during: { t: string; toast: string } | null = null;
      const engine = beforeCopying(await createPostgresEngine(twins.url), async () => {
        during ??= await options('av_t__new');
      });
      try {
        await migrate(engine, { url: twins.url, table: 'av_t', alter }, { execute: true, forceCopy: true });
      } finally {
        await engine.close();
      }
      await twins.alterTwin('av_t', alter);
      expect(during, JSON.stringify(during)).not.toBeNull();
      expect(during!.t).toMatch(/(^|,)autovacuum_enabled=false(,|$)/);
      expect(during!.toast).toMatch(/(^|,)autovacuum_enabled=false(,|$)/);
      expect(await options('av_t')).toEqual(await options('av_t', twins.twin));
      expect((await twins.difference(['av_t__old'])).filter((e) => /\bav_t\b/.test(e))).toEqual([]);
    });
  }

  it('cancels an autovacuum worker on the table instead of timing its locks out behind it, and cuts over', async () => {
    const naptime = String((await rows('SHOW autovacuum_naptime'))[0].autovacuum_naptime);
    // A worker that takes minutes over the table: no cost budget, a long sleep between pages.
    await twins.setup(`DROP TABLE IF EXISTS av_busy, av_busy__old;
      CREATE TABLE av_busy (id int PRIMARY KEY, v text) WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1);
      INSERT INTO av_busy SELECT g, repeat('y', 100) FROM generate_series(1, 50000) g;
      DELETE FROM av_busy WHERE id % 3 = 0`);
    await twins.pool.query(`ALTER SYSTEM SET autovacuum_naptime = 1`);
    await twins.pool.query('SELECT pg_reload_conf()');
    const vacuuming = async () =>
      Number(
        (
          await rows(
            `SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND datname = current_database() AND query LIKE '%av_busy%'`,
          )
        )[0].n,
      ) > 0;
    try {
      await waitUntil('an autovacuum worker on av_busy', vacuuming, 60_000);
      const run = runCli(['migrate', '--url', '$URL', '--table', 'av_busy', '--alter', 'ADD COLUMN w int', '--force-copy', '--execute'], twins.url);
      expect(run.code, run.stderr).toBe(0);
      // Its locks were granted at their first try: none waited out the worker.
      expect(run.stderr).not.toMatch(/lock not granted in time/);
    } finally {
      await twins.pool.query('ALTER SYSTEM RESET autovacuum_naptime');
      await twins.pool.query('SELECT pg_reload_conf()');
    }
    expect(naptime).not.toBe('');
    await twins.alterTwin('av_busy', 'ADD COLUMN w int');
    expect(Number((await rows('SELECT count(*) AS n FROM av_busy'))[0].n)).toBe(50000 - Math.floor(50000 / 3));
  });
});
