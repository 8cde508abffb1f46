import { verdict, type Check } from '../../../../core/engine/checks/check.js';
import { uniquenessCheck } from '../../../../core/engine/contract/guarantees.js';
import type { ContractCheck } from '../../../../core/engine/ports/contract.js';
import { isTrue } from '../../server/sql.js';
import type { ContractContext } from './context.js';

/**
 * What a dropped index guarantees besides reads. A unique one (core/contract/guarantees): kept
 * unless --drop-unique. The replica identity index (REPLICA IDENTITY USING INDEX): without it the
 * table's identity falls back to nothing, so on a published table every UPDATE and DELETE fails,
 * and subscribers can no longer find rows; no flag drops it, the identity is changed first. The
 * constraints an index backs (primary key, UNIQUE, exclusion, a foreign key from another table) are
 * the constraints check's.
 */
export const indexGuarantees: Check<ContractContext> = {
  name: 'index guarantees',
  async run({ pool, t, dropped }): Promise<ContractCheck[]> {
    if (dropped.kind !== 'index') return [];
    const { rows } = await pool.query(
      `SELECT i.indisunique AS unique, i.indisreplident AS identity,
              (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), ', ' ORDER BY k) FROM generate_series(1, i.indnkeyatts) k) AS columns
         FROM pg_index i WHERE i.indexrelid = $1`,
      [dropped.oid],
    );
    const r = rows[0];
    const table = `${t.schema}.${t.name}`;
    return [
      uniquenessCheck(table, dropped.index, String(r.columns), isTrue(r.unique)),
      verdict(
        'replica identity',
        !isTrue(r.identity),
        'it is not the replica identity',
        `index ${dropped.index} is the REPLICA IDENTITY of ${table}: without it UPDATE and DELETE fail on a published table and subscribers cannot find rows; ALTER TABLE ... REPLICA IDENTITY first (no flag overrides this)`,
      ),
    ];
  },
};
