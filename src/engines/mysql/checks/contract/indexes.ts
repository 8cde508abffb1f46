import { note, verdict, type Check } from '../../../../core/engine/checks/check.js';
import { uniquenessCheck } from '../../../../core/engine/contract/guarantees.js';
import type { ContractCheck } from '../../../../core/engine/ports/contract.js';
import { keyCandidates } from '../../schema/key-choice.js';
import type { ContractContext } from './context.js';

/**
 * A dropped index: a unique one keeps its guarantee unless --drop-unique (core/contract/guarantees).
 * Without a PRIMARY KEY, the only unique NOT NULL key is what InnoDB clusters the rows by and what
 * row-based replicas find each changed row by; dropping it is a key change, never a contract step.
 *
 * A dropped column: the server takes a dropped column out of every index holding it, and drops an index left with no
 * column: said, not refused. Refused: a column of the PRIMARY KEY, and one of a UNIQUE key with
 * other columns, which would then be unique on fewer columns (and the DROP fail on duplicates).
 */
export const indexes: Check<ContractContext> = {
  name: 'indexes',
  async run({ database, table, shape, dropped }) {
    if (dropped.kind === 'index') {
      const { index } = dropped;
      const hasPrimary = shape.indexes.some((i) => i.name === 'PRIMARY');
      const candidates = keyCandidates(shape);
      const standsIn = !hasPrimary && candidates.length === 1 && candidates[0] === index;
      return [
        uniquenessCheck(`${database}.${table}`, index.name, index.columns.join(', '), index.unique),
        verdict(
          'row identity',
          !standsIn,
          'the table keeps its key',
          `${database}.${table} has no PRIMARY KEY and ${index.name} stands in for it (InnoDB clusters the rows by it, row-based replicas find rows by it); add a PRIMARY KEY first (no flag overrides this)`,
        ),
      ];
    }
    if (dropped.kind !== 'column') return [];
    const gone = new Set(dropped.columns.map((c) => c.toLowerCase()));
    const results: ContractCheck[] = [];
    const base = (c: string) => c.replace(/\(\d+\)$/, '').toLowerCase();
    const holding = shape.indexes.filter((i) => i.columns.some((c) => gone.has(base(c))));
    const narrowed = holding.filter((i) => i.unique && i.columns.some((c) => !gone.has(base(c))));
    const primary = holding.filter((i) => i.name === 'PRIMARY');
    results.push(
      verdict(
        'keys',
        primary.length === 0 && narrowed.length === 0,
        'no PRIMARY or UNIQUE key would change',
        [
          ...primary.map(() => 'a dropped column is part of the PRIMARY KEY; a contract step does not change keys'),
          ...narrowed
            .filter((i) => i.name !== 'PRIMARY')
            .map((i) => `UNIQUE key ${i.name} (${i.columns.join(', ')}) would be unique on fewer columns; drop it first`),
        ].join('; '),
      ),
    );
    for (const i of holding.filter((x) => !x.unique)) {
      const rest = i.columns.filter((c) => !gone.has(base(c)));
      results.push(
        note(
          'indexes',
          rest.length
            ? `index ${i.name} (${i.columns.join(', ')}) loses ${i.columns.filter((c) => gone.has(base(c))).join(', ')} and keeps (${rest.join(', ')})`
            : `index ${i.name} (${i.columns.join(', ')}) goes too`,
        ),
      );
    }
    return results;
  },
};
