/**
 * Whether SQL text (a view's, a trigger's or a routine's definition, a statement digest) names
 * `name` as a whole word, in any case, quoted or not. Text, not a parse: it can be fooled by a
 * string literal or a same-named column of another table, so what it finds is reported as seen,
 * and the checks that rely on it alone are overridable (see ContractCheck).
 */
export function mentions(text: string, name: string): boolean {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^\\p{L}\\p{N}_$])${escaped}($|[^\\p{L}\\p{N}_$])`, 'iu').test(text);
}

/** The dropped names the text mentions. */
export function mentioned(text: string, names: string[]): string[] {
  return names.filter((n) => mentions(text, n));
}
