import type { Engine, KeyRange, Migration } from '../../src/core/engine/types.js';

/**
 * The real engine, whose migrations have some methods replaced: a test's stand-in for a bug or a
 * stray write at one precise moment. `change` sees the real migration, to call through to it.
 */
export function withMigration(engine: Engine, change: (migration: Migration) => Partial<Migration>): Engine {
  const wrap = (migration: Migration): Migration => {
    const overrides = change(migration) as Record<string | symbol, unknown>;
    return new Proxy(migration, {
      get(target, prop) {
        if (prop in overrides) return overrides[prop];
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };
  return new Proxy(engine, {
    get(target, prop) {
      if (prop === 'prepare') return async (...args: Parameters<Engine['prepare']>) => wrap(await target.prepare(...args));
      if (prop === 'resume') return (...args: Parameters<Engine['resume']>) => wrap(target.resume(...args));
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The real engine, with `before` run ahead of every range the copy (or a repair) copies, checksummed or not. */
export function beforeCopying(engine: Engine, before: (range: KeyRange) => Promise<void>): Engine {
  return withMigration(engine, (migration) => ({
    async copyRange(range: KeyRange) {
      await before(range);
      return migration.copyRange(range);
    },
    async copyAndChecksum(range: KeyRange) {
      await before(range);
      return migration.copyAndChecksum(range);
    },
  }));
}
