import type { AlterPart, InPlaceStep } from '../../../core/engine/ports/in-place.js';
import { ident, qualified } from '../server/sql.js';
import type { PartKind } from './part-kind.js';

export const LOCKS = {
  brief: 'ACCESS EXCLUSIVE for milliseconds (waits at most --lock-timeout-ms, retried with backoff); rows untouched',
  validate: 'SHARE UPDATE EXCLUSIVE while the rows are checked (writers go on); ACCESS EXCLUSIVE for milliseconds to add the constraint NOT VALID',
  notNull:
    'ACCESS EXCLUSIVE for milliseconds, twice (the CHECK added NOT VALID, then SET NOT NULL on the validated CHECK); SHARE UPDATE EXCLUSIVE while the rows are checked',
  index:
    'SHARE UPDATE EXCLUSIVE for the whole build (writers go on; waits for transactions already running, up to --snapshot-wait-ms); ACCESS EXCLUSIVE for milliseconds to attach the constraint',
  copy: "none on the table during the copy; the cut-over's ACCESS EXCLUSIVE for at most --lock-timeout-ms per attempt",
};

/** A part as the classifier saw it on the probe. */
export interface Probed {
  part: AlterPart;
  kind: PartKind;
  /** The index an ADD ... UNIQUE made on the probe, as `pg_get_indexdef` and its constraint's name. */
  index?: { oid: string; create: string; name: string; deferrable: string };
  /** The constraint an ADD CHECK / FOREIGN KEY gets (the name the server chose on the probe, or will choose). */
  constraint?: string;
  /** Columns (attnums) whose rows this part checks: a constraint's, an index's, SET NOT NULL's. */
  reads: string[];
  /** Columns (attnums) this part adds, drops, renames or retypes. */
  changes: string[];
  /** Not tried on the probe (it names an object only the real table has: a foreign key, its parent). */
  untried?: boolean;
}

/**
 * All or nothing, as the native ALTER. Every part that can fail on the rows (a validation, a unique
 * build, a NOT NULL check) runs first, each leaving only an addition no old code sees break (a
 * constraint, an index not yet attached) that the run's undo removes on a later failure; then
 * everything that changes or breaks (drops, type changes, renames, defaults, SET NOT NULL, the
 * unique constraints attached) runs in one short transaction. A part that checks a column another
 * part adds, drops, renames or retypes cannot be checked before that change: such a mix is the
 * copy's, and the reason says so.
 */
export function inPlaceSteps(table: string, schema: string, name: string, probed: Probed[]): InPlaceStep[] | string {
  const fallible = probed.filter((p) => p.part.class === 'validate-later' || p.part.class === 'online-index');
  const changing = probed.filter((p) => !fallible.includes(p) && p.changes.length);
  for (const f of fallible) {
    const other = changing.find((c) => c.changes.some((col) => f.reads.includes(col)));
    if (other)
      return `"${f.part.clause}" checks a column that "${other.part.clause}" changes: in place it could not be checked before the change and still be all or nothing`;
    if (f.reads.some((col) => col.startsWith('new:')))
      return `"${f.part.clause}" checks a column the same ALTER adds: in place it could not be checked before the change and still be all or nothing`;
  }
  const alter = (what: string) => `ALTER TABLE ${table} ${what}`;
  const prepare: InPlaceStep[] = [];
  const final: string[] = [];
  const cleanup: string[] = [];
  let pending: string[] = [];
  const flush = () => {
    if (pending.length) final.push(alter(pending.join(', ')));
    pending = [];
  };
  const validated = (constraint: string, add: string) => {
    // Two transactions in one step: the brief ACCESS EXCLUSIVE to add it is not held through the scan.
    prepare.push({
      what: `validate ${constraint}`,
      sql: [alter(add), alter(`VALIDATE CONSTRAINT ${ident(constraint)}`)],
      transaction: false,
      undo: [alter(`DROP CONSTRAINT IF EXISTS ${ident(constraint)}`)],
    });
  };
  for (const { part, kind, index, constraint } of probed) {
    const clause = part.clause;
    if (kind.kind === 'rename-column' || kind.kind === 'rename-constraint') {
      // RENAME cannot share an ALTER TABLE with other subcommands.
      flush();
      final.push(alter(clause));
    } else if (part.class === 'instant') {
      pending.push(clause);
    } else if (part.class === 'validate-later' && kind.kind === 'set-not-null') {
      const check = `${name}_${kind.column}_not_null`.slice(0, 56) + '_sc_chk';
      validated(check, `ADD CONSTRAINT ${ident(check)} CHECK (${ident(kind.column)} IS NOT NULL) NOT VALID`);
      pending.push(`ALTER COLUMN ${ident(kind.column)} SET NOT NULL`);
      // Its own statement, after: in one ALTER TABLE the server drops constraints before it sets NOT NULL.
      cleanup.push(alter(`DROP CONSTRAINT ${ident(check)}`));
    } else if (part.class === 'validate-later') {
      const body = clause.replace(/^ADD\s+/i, '');
      validated(constraint!, `${/^CONSTRAINT\b/i.test(body) ? clause : `ADD CONSTRAINT ${ident(constraint!)} ${body}`} NOT VALID`);
    } else if (part.class === 'online-index' && index) {
      const create = index.create.replace(/^CREATE UNIQUE INDEX (\S+) ON (?:ONLY )?\S+/, `CREATE UNIQUE INDEX CONCURRENTLY $1 ON ${table}`);
      const drop = `DROP INDEX CONCURRENTLY IF EXISTS ${qualified(schema, index.name)}`;
      prepare.push({ what: `build ${index.name} concurrently`, sql: [create], transaction: false, undo: [drop] });
      pending.push(`ADD CONSTRAINT ${ident(index.name)} UNIQUE USING INDEX ${ident(index.name)}${index.deferrable}`);
    }
  }
  flush();
  final.push(...cleanup);
  if (final.length === 0) return prepare;
  const what = final.length === 1 ? final[0] : `${final.length} ALTER TABLE statements in one transaction`;
  return [...prepare, { what, sql: final, transaction: true, undo: [] }];
}
