import { exactForm } from '../../../core/engine/compare/exact.js';
import { mysqlCharLikeCopy, mysqlColumn, mysqlConvertLikeCopy, mysqlExactValue, mysqlMembersLikeCopy } from './exact.js';
import { ident } from '../server/sql.js';
import type { AlterEffects } from './alter.js';
import type { MysqlColumn } from './inspect.js';

// Which column of the new table is copied from which of the original (renames, drops, a column
// added under a dropped one's name), and how the checksum compares each pair.

export interface ColumnPair {
  source: string;
  target: string;
  /** How each side is rendered for the checksum; null when a type change makes the two incomparable. */
  checksum: [string, string] | null;
}

export function mapColumns(original: MysqlColumn[], shadow: MysqlColumn[], effects: AlterEffects): ColumnPair[] {
  const byName = new Map(original.map((c) => [c.name.toLowerCase(), c]));
  const renamedAway = new Set([...effects.renamed.values()].map((from) => from.toLowerCase()));
  const pairs: ColumnPair[] = [];
  for (const target of shadow) {
    if (target.generated) continue; // the server computes it
    const lower = target.name.toLowerCase();
    const renamedFrom = effects.renamed.get(lower);
    // A column dropped, or renamed away, and a column added under its old name in the same ALTER
    // is a new column: it starts from its default, as a native ALTER does.
    const vacated = effects.dropped.has(lower) || renamedAway.has(lower);
    const source = renamedFrom ? byName.get(renamedFrom.toLowerCase()) : vacated ? undefined : byName.get(lower);
    if (!source) continue;
    pairs.push({ source: source.name, target: target.name, checksum: checksumPair(source, target) });
  }
  return pairs;
}

/**
 * How the checksum compares a copied column: each side's text, or null when no exact form exists
 * for the pair (the column is then left out of the checksum, and said so in the plan). The original
 * is first converted to the new type as the copy converts it where CAST spells that conversion (a
 * DATETIME(6) that becomes DATETIME(3) is compared as the copy truncates it); then both sides go to
 * a form that loses nothing (core/engine/compare/exact.ts).
 */
export function checksumPair(source: MysqlColumn, target: MysqlColumn): [string, string] | null {
  const s = ident(source.name);
  const t = ident(target.name);
  const [a, b] = [mysqlColumn(source), mysqlColumn(target)];
  const choice = exactForm(a, b);
  if ('refused' in choice) return null;
  const converted = choice.form.form === 'same' ? null : mysqlConvertLikeCopy(s, target);
  if (converted) return [mysqlExactValue({ form: 'same' }, converted, b), mysqlExactValue({ form: 'same' }, t, b)];
  const members = choice.form.form === 'text' ? mysqlMembersLikeCopy(s, target) : null;
  const [x, y] = (choice.form.form === 'text' && mysqlCharLikeCopy(s, t, target)) || [members ?? s, t];
  return [mysqlExactValue(choice.form, x, a), mysqlExactValue(choice.form, y, b)];
}
