import { verdict, type Check } from '../../../core/engine/checks/check.js';
import type { PgCheckContext } from './context.js';

/**
 * Code that another role can change (the table owner's casts, operators, DEFAULTs, CHECKs, index
 * expressions...) must not run with the migrating role's rights (docs/invariants.md, invariant 16). Found
 * on the plan's probe (server/owner-code.ts), where the ALTER is applied.
 */
export const ownerCode: Check<PgCheckContext> = {
  name: 'owner code',
  run({ detail: d }) {
    return Promise.resolve(
      verdict('owner code', d.foreignCode === undefined, "no code another role can change runs with the migrating role's rights", d.foreignCode ?? ''),
    );
  },
};
