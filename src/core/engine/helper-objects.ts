import { UserError } from './errors.js';

/**
 * shadowcut's mark on the helper tables it makes (history, checkpoint, heartbeat): the start of the
 * table's comment. The history table's comment has started with it since the first version.
 */
export const HELPER_MARK = 'shadowcut:';

export function helperComment(purpose: string): string {
  return `${HELPER_MARK} ${purpose}`;
}

/** What the server says about an existing object with a helper's name, as each engine can tell it. */
export interface HelperFacts {
  /** The object's kind when it is not a plain table (a view, a partitioned table, a sequence), else null. */
  otherKind: string | null;
  /** Its comment starts with HELPER_MARK. */
  marked: boolean;
  /** The role owning it when that is not the migrating role; null when it is, or where tables have no owner (MariaDB). */
  foreignOwner: string | null;
  /** Triggers, rules (other than a view's) and row-security policies on it: code that would run as the migrating role. */
  triggers: string[];
  rules: string[];
  policies: string[];
  rowSecurity: boolean;
  /** Why some of the above could not be read (MySQL lists triggers only to a user with TRIGGER), else null. */
  unreadable: string | null;
  /**
   * Roles other than the owner that may write it or put code on it (INSERT, UPDATE, DELETE, TRUNCATE,
   * TRIGGER, REFERENCES, on the table or one of its columns), each as `role (RIGHTS)`: what they
   * write would be read back by a later run as if shadowcut had written it. Empty where the engine
   * cannot keep others out (MySQL's database-wide grants reach every table): there, what is read
   * back is authenticated instead.
   */
  writers: string[];
}

/**
 * A helper that exists and is not provably shadowcut's own. A UserError (one line, non-zero exit),
 * and not a warning even where the helper is optional (the history): writing into it is the danger.
 */
export class HelperRefusedError extends UserError {
  constructor(object: string, reasons: string[]) {
    super(
      `refusing to use ${object}: it ${reasons.join(', ')}; shadowcut writes only into helper tables it made itself ` +
        `(drop or rename it after checking who made it and why)`,
    );
    this.name = 'HelperRefusedError';
  }
}

/**
 * Why the facts do not show the object as shadowcut's own (empty when they do): a plain table, owned
 * by the migrating role, with nothing on it that runs code, and marked. `unmarkedIsOurs` says the
 * engine proves authorship without the mark (PostgreSQL: the owner is the migrating role), so a
 * table an older version made before the mark existed is accepted, and the caller marks it.
 */
export function helperProblems(f: HelperFacts, unmarkedIsOurs: boolean): string[] {
  const reasons: string[] = [];
  if (f.otherKind) reasons.push(`is a ${f.otherKind}, not a table`);
  if (f.foreignOwner !== null) reasons.push(`is owned by ${f.foreignOwner}, not by the migrating role`);
  if (f.triggers.length) reasons.push(`has triggers (${f.triggers.join(', ')})`);
  if (f.unreadable) reasons.push(`cannot be checked for triggers: ${f.unreadable}`);
  if (f.writers.length) reasons.push(`is writable by ${f.writers.join(', ')}`);
  if (f.rules.length) reasons.push(`has rules (${f.rules.join(', ')})`);
  if (f.policies.length) reasons.push(`has row-security policies (${f.policies.join(', ')})`);
  else if (f.rowSecurity) reasons.push('has row security enabled');
  if (!f.marked && !unmarkedIsOurs) reasons.push(`does not carry shadowcut's mark (a comment starting "${HELPER_MARK}")`);
  return reasons;
}

export function refuseUnlessOwn(object: string, f: HelperFacts, unmarkedIsOurs: boolean): void {
  const reasons = helperProblems(f, unmarkedIsOurs);
  if (reasons.length) throw new HelperRefusedError(object, reasons);
}
