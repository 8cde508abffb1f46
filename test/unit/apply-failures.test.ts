// The applier when an apply fails part way (core/migrate/applier.ts, applyBatch): a batch that meets a
// unique conflict is applied with the keys after it, then in halves; a lost connection there must
// leave every key it had not applied pending, or the next position acknowledged removes their
// entries from a trigger log (or moves a slot past them) with the change never applied. A fake
// migration stands in for the engine: the decisions are core's.
import { describe, expect, it } from 'vitest';
import { UniqueViolationError } from '../../src/core/engine/errors.js';
import type { Key } from '../../src/core/engine/types.js';
import { FakeMigration, isLostConnection, lostConnection } from '../support/fake-migration.js';

const keys = (from: number, count: number): Key[] => Array.from({ length: count }, (_, i) => [from + i]);

describe('an apply cut short', () => {
  it('a lost connection while a unique conflict is applied in halves leaves the keys taken with the batch pending, and they are applied', async () => {
    const fake = new FakeMigration();
    const { applier, ctx } = await fake.run({ isTransient: isLostConnection });
    const batch = ctx.config.applyBatch;
    fake.emit(keys(1, batch));
    fake.emit(keys(10_001, 5));
    let calls = 0;
    const applied: Key[] = [];
    fake.migration.applyKeys = async (given: Key[]) => {
      calls++;
      // The batch, then the batch with the keys after it, conflict; the halving then loses its connection.
      if (calls <= 2) throw new UniqueViolationError('Duplicate entry');
      if (calls === 3) throw lostConnection();
      applied.push(...given);
    };
    await applier.applyPending();
    await applier.applyPending();
    const seen = new Set(applied.map(([k]) => Number(k)));
    expect([...keys(1, batch), ...keys(10_001, 5)].filter(([k]) => !seen.has(Number(k)))).toEqual([]);
    expect(applier.backlog).toBe(0);
    expect(fake.acknowledged.at(-1)).toEqual({ n: 2 });
  });
});
