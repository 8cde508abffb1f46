// markdownText (src/core/report/report-files.ts): strings others chose, made inert in markdown and HTML;
// refuseUnknownParameters (src/core/engine/connect/url-parameters.ts): a URL parameter nothing reads is refused.
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/core/engine/errors.js';
import { markdownText } from '../../src/core/report/report-files.js';
import { refuseUnknownParameters } from '../../src/core/engine/connect/url-parameters.js';

describe('markdownText', () => {
  it.each([
    ['<img src=x onerror=alert(1)>', '&lt;img src=x onerror=alert(1)&gt;'],
    ['a | b', 'a &#124; b'],
    ['\\|', '&#92;&#124;'],
    ['`rm -rf`', '&#96;rm -rf&#96;'],
    ['[click](https://evil.example)', '&#91;click&#93;(https://evil.example)'],
    ['"quoted" & more', '&quot;quoted&quot; &amp; more'],
    ['&amp;', '&amp;amp;'],
    ['plain_table.name', 'plain_table.name'],
  ])('%j becomes %j', (text, shown) => {
    expect(markdownText(text)).toBe(shown);
  });

  it('keeps text on one line, folding the space around line breaks', () => {
    expect(markdownText('line one  \n   line two\r\nline three\n\n# not a heading')).toBe('line one line two line three # not a heading');
    // A lone carriage return breaks a line in markdown too.
    expect(markdownText('a | b\r# heading')).toBe('a &#124; b # heading');
    // A tab is a space; other control and bidi characters show as escapes (unit/shown-text.test.ts).
    expect(markdownText('a\tb  c')).toBe('a b  c');
  });
});

describe('refuseUnknownParameters', () => {
  const known = ['sslmode', 'sslrootcert'];

  it('accepts known parameters, and none', () => {
    expect(() => refuseUnknownParameters(new URL('postgres://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem'), known, 'the URL')).not.toThrow();
    expect(() => refuseUnknownParameters(new URL('postgres://u@h/db'), known, 'the URL')).not.toThrow();
  });

  it('refuses the first unknown one, naming those it reads', () => {
    const run = () => refuseUnknownParameters(new URL('mysql://u@h/db?sslmode=require&ssl-mode=REQUIRED'), known, '--replica');
    expect(run).toThrow(UserError);
    expect(run).toThrow('--replica has an unknown parameter ssl-mode; shadowcut reads sslmode, sslrootcert');
  });

  it('matches names exactly, case included', () => {
    expect(() => refuseUnknownParameters(new URL('postgres://h/db?SSLMODE=require'), known, 'the URL')).toThrow('the URL has an unknown parameter SSLMODE');
  });
});
