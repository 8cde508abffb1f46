import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { jsonText, shownLines, shownText } from '../../src/core/report/shown-text.js';
import { markdownText } from '../../src/core/report/report-files.js';
import { escape, escapeLines } from '../../src/operator/report-page/style.js';
import { Output } from '../../src/cli/output.js';

/** A table name an application wrote into a queue row: it clears its line, writes a fake one and reverses what follows. */
const HOSTILE = 'orders;curl x\x1b[2K\r#1  complete\u202emigrate\u2066\x9b31m\x7f';

/** Everything a terminal acts on instead of showing: C0, DEL, C1 and the bidi formatting characters. */
// eslint-disable-next-line no-control-regex -- the control characters are what is looked for
const ACTIVE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe("shownText: what a terminal, a log or a hook is given of others' text", () => {
  it('shows every control and bidi character as an escape, and leaves the rest as it is', () => {
    expect(shownText(HOSTILE)).toBe('orders;curl x\\x1b[2K\\r#1  complete\\u202emigrate\\u2066\\x9b31m\\x7f');
    expect(shownText('a\nb\tc\u0000')).toBe('a\\nb\\tc\\x00');
    for (const c of ['\u061c', '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u2067', '\u2068', '\u2069', '\u2028', '\u2029', '\u0085']) {
      expect(shownText(c)).toMatch(/^\\[xu][0-9a-f]+$/);
    }
    const plain = 'café «naïve» 表 — ok; `x` <b> \\x1b';
    expect(shownText(plain)).toBe(plain);
  });

  it('shownLines keeps the line breaks of a block and escapes inside each line', () => {
    expect(shownLines('ALTER TABLE t\n  ADD c\u202e INT\r')).toBe('ALTER TABLE t\n  ADD c\\u202e INT\\r');
  });

  it('jsonText is the same data for a JSON reader, and shows nothing active to a terminal', () => {
    const value = { table: HOSTILE, nested: [{ stage: 'a\u2066b' }], n: 1 };
    for (const indent of [undefined, 2]) {
      const text = jsonText(value, indent);
      expect(ACTIVE.test(text.replace(/\n/g, ''))).toBe(false);
      expect(JSON.parse(text)).toEqual(value);
    }
    expect(jsonText({ a: '\u202e' })).toBe('{"a":"\\u202e"}');
  });

  it('markdown and HTML show it the same way, their own syntax escaped after', () => {
    expect(markdownText('t\u202e|x')).toBe('t&#92;u202e&#124;x');
    expect(escape('<b>\u202e')).toBe('&#60;b&#62;\\u202e');
    expect(escapeLines('a\u202e\n<b>')).toBe('a\\u202e\n&#60;b&#62;');
  });
});

describe("Output: the CLI's one writer", () => {
  function captured(): { out: Output; text: () => string } {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d: Buffer) => (text += d.toString()));
    return { out: new Output(stream), text: () => text };
  }

  it('writes each line escaped whole: a newline inside one is text', () => {
    const { out, text } = captured();
    out.line(`#7  refused  ${HOSTILE}`);
    out.lines(['a\nb', 'c']);
    out.json({ table: HOSTILE });
    expect(text().split('\n')).toHaveLength(5);
    expect(ACTIVE.test(text().replace(/\n/g, ''))).toBe(false);
    expect(text().split('\n').slice(1, 3)).toEqual(['a\\nb', 'c']);
  });

  it("a terminal's status line is the only control it writes, and a line replaces it", () => {
    const { out, text } = captured();
    out.status(`[copy ${HOSTILE}] 10%`);
    out.line('phase: verify');
    out.status('[verify] 20%');
    out.endStatus();
    expect(text()).toBe(`\r\x1b[2K[copy ${shownText(HOSTILE)}] 10%\r\x1b[2Kphase: verify\n\r\x1b[2K[verify] 20%\n`);
  });
});
