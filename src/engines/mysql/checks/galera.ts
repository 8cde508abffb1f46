import { verdict, type Check } from '../../../core/check.js';
import { GALERA_COPY_REFUSAL, galeraNode, galeraOsuRefusal } from '../server/galera.js';
import { MULTI_PRIMARY_COPY_REFUSAL, multiPrimaryMember } from '../server/group-replication.js';
import type { MysqlCheckContext } from './context.js';

/**
 * Galera (issue 34): the cut-over's LOCK TABLES is node-local and its RENAME a TOI statement, which
 * waits for that lock uninterruptibly while every node queues behind it: a wedged cluster. Until a
 * cut-over safe under TOI exists the copy path is refused before anything is made; RSU, which makes a
 * DDL on one node only, is refused whatever the path (`in-place/classify.ts` refuses it there).
 */
export const galera: Check<MysqlCheckContext> = {
  name: 'galera',
  async run({ pool }) {
    const node = await galeraNode(pool);
    return verdict('galera', node === null, 'not a Galera node', node ? (galeraOsuRefusal(node) ?? GALERA_COPY_REFUSAL) : '');
  },
};

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
