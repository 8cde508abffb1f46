import { UserError } from '../core/engine/errors.js';
import type { Engine } from '../core/engine/types.js';

/** Chooses the engine from the URL scheme; engines load lazily so one engine's driver never loads for the other. */
export async function createEngine(url: string): Promise<Engine> {
  const scheme = url.split(':', 1)[0].toLowerCase();
  if (scheme === 'mysql' || scheme === 'mariadb') {
    const { createMysqlEngine } = await import('./mysql/index.js');
    return createMysqlEngine(url);
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    const { createPostgresEngine } = await import('./postgres/index.js');
    return createPostgresEngine(url);
  }
  throw new UserError(`--url must start with mysql:// or postgres:// (got "${scheme}:")`);
}
