import { verdict, type Check } from '../../../core/engine/checks/check.js';
import { MULTI_PRIMARY_COPY_REFUSAL, multiPrimaryMember } from '../server/group-replication.js';
import type { MysqlCheckContext } from './context.js';

/**
 * MySQL Group Replication in multi-primary mode, the same class as Galera: the other members write
 * the table past the cut-over's node-local lock. Single-primary mode takes writes on the primary only,
 * where shadowcut runs (a secondary is read-only and refuses the shadow itself).
 */
export const groupReplication: Check<MysqlCheckContext> = {
  name: 'group replication',
  async run({ pool }) {
    const multi = await multiPrimaryMember(pool);
    return verdict('group replication', !multi, 'not a multi-primary group member', MULTI_PRIMARY_COPY_REFUSAL);
  },
};
