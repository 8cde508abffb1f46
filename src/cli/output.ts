import { jsonText, shownText } from '../core/report/shown-text.js';

/**
 * The only writer of shadowcut's stdout and stderr (`npm run lint`'s structure check refuses
 * `process.stdout`/`process.stderr`/`console` anywhere else under src/). Every line goes out
 * through core/report/shown-text.ts, whoever's text it carries: a table name, a queue row, a
 * server's error or a message of shadowcut's own. Lines are written one by one because a line is
 * the unit that is escaped whole: a newline inside one is someone's text, and shows as `\n`.
 */
export class Output {
  private statusOpen = false;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  /** One line. */
  line(text: string): void {
    this.write(`${shownText(text)}\n`);
  }

  lines(texts: readonly string[]): void {
    for (const text of texts) this.line(text);
  }

  /** Text whose line breaks are the writer's own (commander's help and usage); each line escaped. */
  text(text: string): void {
    const lines = text.split('\n');
    const last = lines.pop();
    this.lines(lines);
    if (last) this.write(shownText(last));
  }

  /** One JSON line (JSON lines, `--json`). */
  json(value: unknown): void {
    this.write(`${jsonText(value)}\n`);
  }

  /** A status line rewritten in place on a terminal, until the next line or `endStatus`. */
  status(text: string): void {
    this.stream.write(`\r\x1b[2K${shownText(text)}`);
    this.statusOpen = true;
  }

  /** Ends an open status line where it stands. */
  endStatus(): void {
    if (this.statusOpen) this.stream.write('\n');
    this.statusOpen = false;
  }

  /** A line replaces an open status line rather than following it. */
  private write(text: string): void {
    this.stream.write(this.statusOpen ? `\r\x1b[2K${text}` : text);
    this.statusOpen = false;
  }
}

export const stdout = new Output(process.stdout);
export const stderr = new Output(process.stderr);
