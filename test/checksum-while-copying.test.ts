// --checksum-while-copying: each chunk is checksummed in its copy's transaction, and the
// verification only checksums again the chunks that did not match then and compares row by row the
// keys applied since the copy started. Each test takes one of those two away from the proof (a
// chunk that did not match, an apply that went wrong) and fails if the verification skips it.
import { describe, expect, it } from 'vitest';
import type { Engine, Key, KeyRange, Session } from '../src/core/engine/types.js';
import { databases, migrateOn, useDatabase } from './support/fixture.js';
import { withMigration } from './support/wrap.js';

const holds = (range: KeyRange, id: number) => (range.after === null || Number(range.after[0]) < id) && (range.upTo === null || Number(range.upTo[0]) >= id);

describe.each(databases)('$name: checksum while copying', ({ open }) => {
  const table = 'cw_t';
  const mirror = 'cw_mirror';
  const db = useDatabase(open, table, mirror);

  async function twins(rows: number) {
    await db.drop(table, mirror);
    for (const t of [table, mirror]) {
      await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(40), n INT)`);
      await db.query(`INSERT INTO ${t} (id, v, n) SELECT g, 'v', g FROM (${db.series(rows)}) s`);
    }
  }

  const run = (engine: Engine) =>
    migrateOn(db, table, 'ADD COLUMN x INT', { checksumWhileCopying: true, chunkTimeMs: 5, copyThreads: 3 }, { engine }).finally(() => engine.close());

  it('copies, checksums and proves parity in one round when nothing differs', async () => {
    await twins(5000);
    const result = await run(await db.engine());
    await db.query(`ALTER TABLE ${mirror} ADD COLUMN x INT`);
    expect(result.checksumRounds).toBe(1);
    // The summary must not claim a whole-table checksum that never ran.
    expect(result.copyTimeProof).toEqual({ chunksRechecked: 0, keysCompared: 0 });
    expect(await db.differences(table, mirror)).toEqual([]);
  });

  it('checksums again at verification a chunk whose copy-time checksum did not match, and repairs it', async () => {
    await twins(5000);
    // The chunk holding row 2500 is damaged after its copy, and its checksum reported as differing,
    // as it would be had a writer come between the copy and the checksum.
    const engine = withMigration(await db.engine(), (migration) => ({
      async copyAndChecksum(range: KeyRange) {
        const copied = await migration.copyAndChecksum(range);
        if (!holds(range, 2500)) return copied;
        await db.query(`UPDATE ${table}__new SET v = 'damaged' WHERE id = 2500`);
        return { ...copied, matched: false };
      },
    }));
    const result = await run(engine);
    await db.query(`ALTER TABLE ${mirror} ADD COLUMN x INT`);
    expect(result.checksumRounds).toBe(2);
    // The narrowed round found the damage; the round that proved parity read the whole table.
    expect(result.copyTimeProof).toBeNull();
    expect(await db.differences(table, mirror)).toEqual([]);
  });

  it('compares row by row the keys applied since the copy started, and repairs one whose apply went wrong', async () => {
    await twins(5000);
    // Row 10's chunk is long copied when it changes; its apply is lost once. Only the keys applied
    // since the copy started can show it: its chunk's checksum matched.
    const state = { changed: false, lost: 0 };
    const engine = withMigration(await db.engine(), (migration) => ({
      async copyAndChecksum(range: KeyRange) {
        if (!state.changed && holds(range, 4000)) {
          state.changed = true;
          for (const t of [table, mirror]) await db.query(`UPDATE ${t} SET v = 'late' WHERE id = 10`);
        }
        return migration.copyAndChecksum(range);
      },
      async applyKeys(keys: Key[], session?: Session) {
        const kept = keys.filter((k) => String(k[0]) !== '10');
        if (state.lost > 0 || kept.length === keys.length) return migration.applyKeys(keys, session);
        state.lost++;
        if (kept.length) await migration.applyKeys(kept, session);
      },
    }));
    const result = await run(engine);
    await db.query(`ALTER TABLE ${mirror} ADD COLUMN x INT`);
    expect(state.lost).toBe(1);
    expect(result.checksumRounds).toBe(2);
    expect(await db.differences(table, mirror)).toEqual([]);
  });
});
