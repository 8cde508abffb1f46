// Issue 59, item 2: a Citus reference table (one shard, a placement on every node) altered online
// through its coordinator, under writes through the coordinator that insert, update (its key too) and
// delete, some in the same transaction as a write to a distributed table whose foreign key names it.
// The oracle is a twin database of the same cluster that took the same writes and Citus's own ALTER
// TABLE: every node's definitions (each placement included), the metadata (partmethod 'n', repmodel,
// co-location, where each placement is), each placement's rows on its node, and the distributed
// table's foreign key, which must name the new reference table as after Citus's ALTER. Killed in a
// phase and resumed it ends the same; with a revert window, the revert leaves it as a twin that never
// took the ALTER.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { citusUnavailable, startCitusCluster, type CitusCluster } from './support/citus.js';
import { citusTwins, type CitusTwins } from './support/citus-twins.js';
import { citusWriters, helpersLeft, revertAfterWindow, type Statements } from './support/citus-writers.js';
import { killDuringPhase } from './support/kill.js';
import { runCliAsync } from './support/mysql.js';

const unavailable = citusUnavailable();
if (unavailable) console.warn(`citus-reference.test.ts skipped: ${unavailable}`);

let cluster: CitusCluster;

const SCHEMA = `
  SET citus.shard_count = 4;
  CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL, pop int NOT NULL DEFAULT 0, note text);
  SELECT create_reference_table('countries');
  CREATE INDEX countries_name ON countries (name);
  INSERT INTO countries SELECT 'c' || g, 'country ' || g, g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, 5000) g;
  CREATE TABLE orders (id bigint PRIMARY KEY, country text NOT NULL REFERENCES countries (code), qty int NOT NULL);
  SELECT create_distributed_table('orders', 'id');
  INSERT INTO orders SELECT g, 'c' || (1 + g % 50), g FROM generate_series(1, 3000) g;
  GRANT SELECT ON countries TO PUBLIC;
  COMMENT ON TABLE countries IS 'the countries'`;

const ALTER = 'ALTER COLUMN pop TYPE bigint, ADD COLUMN extra int NOT NULL DEFAULT 7';
const TABLES = ['countries', 'orders'];
const KEPT = ['countries__old', 'countries_pkey__old', 'countries_name__old'];

/**
 * Countries inserted, renamed, their key changed and deleted (only those no order names: the first
 * 50 are), and a new country with an order naming it in one transaction across the reference table
 * and the distributed one.
 */
function writers(twins: CitusTwins): { stop: () => Promise<number> } {
  return citusWriters(twins, (n, next): Statements => {
    const pick = `c${51 + (n % 4950)}`;
    switch (n % 5) {
      case 0: {
        const id = next();
        return [
          ['INSERT INTO countries (code, name, pop) VALUES ($1, $2, $3)', [`x${id}`, `new ${id}`, id % 1000]],
          ['INSERT INTO orders VALUES ($1, $2, 1)', [id, `x${id}`]],
        ];
      }
      case 1:
        return [["UPDATE countries SET pop = pop + 1, name = name || '.' WHERE code = $1", [pick]]];
      case 2:
        return [['DELETE FROM countries WHERE code = $1', [pick]]];
      case 3:
        return [["UPDATE countries SET code = code || 'k' WHERE code = $1", [pick]]];
      default:
        return [["UPDATE countries SET note = 'w' || $2 WHERE code = $1", [`c${1 + (n % 50)}`, n]]];
    }
  });
}

describe.skipIf(unavailable !== null)('Citus: a reference table altered online, through the coordinator', () => {
  beforeAll(async () => {
    cluster = await startCitusCluster();
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it("under writes through the coordinator: every placement as Citus's own ALTER TABLE leaves it, and the distributed table's key names the new table", async () => {
    const twins = await citusTwins(cluster, 'reference');
    await twins.setup(SCHEMA);
    const load = writers(twins);
    const run = await runCliAsync(
      ['migrate', '--execute', '--force-copy', '--table', 'countries', '--alter', ALTER, '--url', '$URL', '--chunk-time-ms', '20'],
      twins.live.coordinatorUrl,
    );
    const committed = await load.stop();
    expect(run.stderr).toMatch(/phase done/);
    expect(run.code, run.stderr).toBe(0);
    expect(committed).toBeGreaterThan(20);
    await twins.twin.coordinator.query(`ALTER TABLE countries ${ALTER}`);
    expect(await twins.difference(TABLES, KEPT)).toEqual([]);
    const { rows } = await twins.live.coordinator.query<{ fk: string }>(
      `SELECT conname || ' -> ' || confrelid::regclass::text || (CASE WHEN convalidated THEN '' ELSE ' not valid' END) AS fk
         FROM pg_constraint WHERE contype = 'f' AND conrelid = 'orders'::regclass`,
    );
    expect(rows.map((r) => r.fk)).toEqual(['orders_country_fkey -> countries']);
    expect(await helpersLeft(twins, 'countries')).toEqual([]);
  });

  it.each(['copy', 'cutover'])('killed in its %s phase and resumed: the same end, nothing left on any node', async (phase) => {
    const twins = await citusTwins(cluster, `reference_kill_${phase}`);
    await twins.setup(SCHEMA);
    const load = writers(twins);
    const args = ['--table', 'countries', '--alter', ALTER, '--chunk-time-ms', '20', '--max-rows-per-sec', '5000'];
    const killed = await killDuringPhase([...args, '--url', twins.live.coordinatorUrl], phase);
    expect(killed.killed, killed.stderr).toBe(true);
    const resumed = await runCliAsync(['migrate', '--execute', '--force-copy', '--resume', ...args, '--url', '$URL'], twins.live.coordinatorUrl);
    await load.stop();
    expect(resumed.code, resumed.stderr).toBe(0);
    await twins.twin.coordinator.query(`ALTER TABLE countries ${ALTER}`);
    expect(await twins.difference(TABLES, KEPT)).toEqual([]);
    expect(await helpersLeft(twins, 'countries')).toEqual([]);
  });

  it('a revert window: writes after the cut-over follow back, and the revert leaves every placement as a twin that never took the ALTER', async () => {
    const twins = await citusTwins(cluster, 'reference_revert');
    await twins.setup(SCHEMA);
    const load = writers(twins);
    const run = runCliAsync(
      ['migrate', '--execute', '--force-copy', '--revert-window', '10m', '--table', 'countries', '--alter', ALTER, '--url', '$URL', '--chunk-time-ms', '20'],
      twins.live.coordinatorUrl,
    );
    const done = await revertAfterWindow('public.countries', run, 50);
    const committed = await load.stop();
    expect(done.stderr).toMatch(/reverted: public\.countries has its old schema again/);
    expect(done.code, done.stderr).toBe(0);
    expect(committed).toBeGreaterThan(50);
    expect(await twins.difference(TABLES, ['countries__new', 'countries__new_pkey', 'countries__new_name_idx'])).toEqual([]);
    expect((await helpersLeft(twins, 'countries')).filter((h) => !/^table countries__new(_pkey|_name_idx)?(_\d+)?$/.test(h))).toEqual([]);
  });
});
