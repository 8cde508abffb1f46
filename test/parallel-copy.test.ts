// --threads: the copy runs several chunks at once, each on its own session, and still never at the
// same time as an apply (docs/invariants.md, invariant 3): the stream is applied between waves of chunks.
import { describe, expect, it } from 'vitest';
import type { Engine, Key, KeyRange, Migration, Session } from '../src/core/engine/types.js';
import { databases, migrateOn, plainDatabases, useDatabase } from './support/fixture.js';
import { ownedRowsPair, ownedRowWrites } from './support/owned-writes.js';
import { MirrorWorkload } from './support/workload.js';
import { withMigration } from './support/wrap.js';

const dialects = {
  mysql: {
    create: (t: string) => `CREATE TABLE ${t} (id BIGINT PRIMARY KEY, qty INT NOT NULL, label VARCHAR(20), at DATETIME(6) NOT NULL, price DECIMAL(30,10))`,
    at: `'2024-01-01 00:00:00.000001' + INTERVAL g SECOND`,
    alter: 'MODIFY qty BIGINT NOT NULL, ADD COLUMN note VARCHAR(10) NULL',
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (id int8 PRIMARY KEY, qty int NOT NULL, label varchar(20), at timestamptz NOT NULL, price numeric(30,10))`,
    at: `'2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1.000001 second'`,
    alter: 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note varchar(10)',
  },
};

/** The real engine, watched: how many chunk copies run at once, and whether an apply ever ran during one. */
function watched(engine: Engine) {
  const seen = { inFlight: 0, most: 0, copies: 0, applies: 0, appliedDuringCopy: 0 };
  const copying =
    <T>(copy: (range: KeyRange) => Promise<T>) =>
    async (range: KeyRange) => {
      seen.inFlight++;
      seen.copies++;
      seen.most = Math.max(seen.most, seen.inFlight);
      try {
        return await copy(range);
      } finally {
        seen.inFlight--;
      }
    };
  const wrapped = withMigration(engine, (migration: Migration) => ({
    copyRange: copying((range) => migration.copyRange(range)),
    copyAndChecksum: copying((range) => migration.copyAndChecksum(range)),
    async applyKeys(keys: Key[], session?: Session) {
      seen.applies++;
      if (seen.inFlight > 0) seen.appliedDuringCopy++;
      return migration.applyKeys(keys, session);
    },
  }));
  return { engine: wrapped, seen };
}

const servers = [...databases.map((d) => ({ ...d, capture: 'stream' as const })), ...plainDatabases.map((d) => ({ ...d, capture: 'trigger' as const }))];

describe.each(servers)('$name: parallel copy ($capture capture)', ({ open, kind, capture }) => {
  const db = useDatabase(open, 'pc_t', 'pc_t_mirror');
  const d = dialects[kind];

  it.each([false, true])(
    'copies 4 chunks at a time under concurrent writes, applies only between waves, and ends equal to the mirror (checksum while copying: %s)',
    async (checksumWhileCopying) => {
      await ownedRowsPair(db, 'pc_t', 6000, d.create, d.at);
      const { engine, seen } = watched(await db.engine());
      const load = new MirrorWorkload(db, ['pc_t', 'pc_t_mirror'], ownedRowWrites(db, 6000));
      load.start();
      try {
        await migrateOn(db, 'pc_t', d.alter, { copyThreads: 4, chunkTimeMs: 5, checksumWhileCopying, lockTimeoutMs: 2000 }, { engine, request: { capture } });
      } finally {
        await engine.close();
      }
      const stats = await load.stop();
      await db.query(`ALTER TABLE pc_t_mirror ${d.alter}`);
      expect(stats.errors).toEqual([]);
      expect(seen.most).toBe(4);
      expect(seen.applies).toBeGreaterThan(0);
      expect(seen.appliedDuringCopy).toBe(0);
      expect(await db.schema('pc_t')).toBe(await db.schema('pc_t_mirror'));
      expect(await db.differences('pc_t', 'pc_t_mirror')).toEqual([]);
    },
  );
});
