import { UserError } from '../errors.js';

/** A URL parameter nothing reads would be silently ignored (a `?ssl-mode=` that does nothing): it is refused, with the ones shadowcut reads. */
export function refuseUnknownParameters(u: URL, known: readonly string[], what: string): void {
  for (const name of u.searchParams.keys()) {
    if (!known.includes(name)) throw new UserError(`${what} has an unknown parameter ${name}; shadowcut reads ${known.join(', ')}`);
  }
}
