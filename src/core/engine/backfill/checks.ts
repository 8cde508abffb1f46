import { verdict } from '../checks/check.js';
import type { CheckResult } from '../types.js';
import type { Assignment } from './sql-text.js';

/** What the checks need to know of a column a --set names, as the engine found it. */
export interface SetColumn {
  name: string;
  generated: boolean;
  inKey: boolean;
}

/**
 * The backfill's checks, the same on both engines: every column --set names exists, is not
 * generated and is not part of the key the batches walk; then the server judges SET and WHERE
 * (`explain` rejects with its message). `find` matches a name by the engine's own rules.
 */
export async function backfillChecks(
  table: string,
  keyIndex: string,
  assignments: Assignment[],
  find: (a: Assignment) => SetColumn | undefined,
  explain: () => Promise<unknown>,
): Promise<CheckResult[]> {
  const problems: string[] = [];
  for (const a of assignments) {
    const column = find(a);
    if (!column) problems.push(`--set names column ${a.column}, which ${table} does not have`);
    else if (column.generated) problems.push(`--set names ${column.name}, a generated column: the server computes it`);
    else if (column.inKey) problems.push(`--set names ${column.name}, a column of the key the batches walk (${keyIndex}); a backfill cannot change it`);
  }
  const results = [verdict('columns', problems.length === 0, `sets ${assignments.map((a) => a.column).join(', ')}`, problems.join('; '))];
  // The server would only repeat a missing column; otherwise it is the judge of SET and WHERE.
  if (problems.length === 0) {
    const refused = await explain().then(
      () => null,
      (error: Error) => error.message,
    );
    results.push(verdict('statement', refused === null, 'the server accepts the UPDATE (EXPLAIN)', `the server refuses the UPDATE: ${refused}`));
  }
  return results;
}
