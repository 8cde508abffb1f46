/**
 * What text may reach a person: the one escaping every output path goes through (the CLI's
 * terminal, log and JSON lines in cli/output.ts, hook environments in operator/hooks.ts, reports,
 * the history's markdown and the live page). Table names, queue rows, history entries and server
 * error texts are written by others (an application account, a hostile fleet target), and nothing
 * proves a string harmless where it is printed: a queue row's escape sequences rewrote its own line
 * of `queue list` as "complete" and hid the rest, and a bidi override shows a name in another order
 * than the bytes a script would act on. Escaping at the sinks rather than at each call is what makes
 * it hold for every string, the ones a future message adds included: a sink cannot tell whose a
 * string is, so it escapes them all (shadowcut's own text has nothing to escape).
 *
 * Escaped: every C0 control (newline and tab included: one message, one line), DEL, every C1
 * control, and the bidirectional formatting characters (embeddings and overrides U+202A-202E,
 * isolates U+2066-2069, the marks U+200E, U+200F and U+061C), with the line and paragraph
 * separators U+2028 and U+2029, which some viewers break lines at.
 */
// eslint-disable-next-line no-control-regex -- matching the control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** What JSON.stringify leaves raw of UNSAFE: everything but C0 (which it escapes inside strings, and which is its layout outside). */
const RAW_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with every unsafe character as a visible escape: `\n`, `\x1b`, `\u202e`. */
export function shownText(text: string): string {
  return text.replace(UNSAFE, (c) => NAMED[c] ?? escapeCode(c.charCodeAt(0)));
}

/** A block whose line breaks are its own (an ALTER, a server's error in a report): each line shown as `shownText` shows it. */
export function shownLines(text: string): string {
  return text.split('\n').map(shownText).join('\n');
}

/**
 * `value` as JSON (with `indent`, as JSON.stringify takes it) that a terminal shows as written.
 * JSON.stringify escapes the C0 controls itself; DEL, the C1 controls and the bidi characters it
 * leaves raw are written as `\u....` escapes, which every JSON reader decodes back to the same
 * string: the data is unchanged, only its spelling.
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(RAW_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function escapeCode(code: number): string {
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}
