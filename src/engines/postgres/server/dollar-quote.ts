/**
 * `body` as a dollar-quoted string whose tag it does not contain: names come from the user, and a
 * table or column named with `$shadowcut$` would otherwise end a fixed tag's body early.
 */
export function dollarQuoted(body: string): string {
  let tag = '$shadowcut$';
  for (let n = 1; body.includes(tag); n++) tag = `$shadowcut_${n}$`;
  return `${tag}${body}${tag}`;
}
