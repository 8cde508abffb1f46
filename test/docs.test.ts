// The manual against the program: every option the CLI prints, and every message a user can be
// refused with, must be findable in docs/. Reads only the repository and the built CLI (`npm test`
// builds it first), so it runs without database servers (vitest.config.ts, project `no-servers`).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { FAULTS, PHASES } from './support/faults.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = path.join(root, 'dist', 'bin', 'shadowcut.js');
const docsDir = path.join(root, 'docs');
/** The troubleshooting index and its pages, one per subject: what the message checks read as one. */
const troubleshootingText = () =>
  [path.join(docsDir, 'troubleshooting.md'), ...readdirSync(path.join(docsDir, 'troubleshooting')).map((f) => path.join(docsDir, 'troubleshooting', f))]
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');

const squash = (text: string) => text.replace(/\s+/g, ' ');

const execFileAsync = promisify(execFile);

/** Asynchronous, so that the forty-odd commands' help is read a few processes at a time (helps). */
async function help(args: string[]): Promise<string> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: build first (npm run build)`);
  const run = await execFileAsync(process.execPath, [cli, ...args, '--help'], { encoding: 'utf8', timeout: 30_000 });
  return run.stdout;
}

/** Each of `commands`' help, in their order, read four processes at a time. */
async function helps(commands: string[][]): Promise<string[]> {
  const texts: string[] = [];
  for (let i = 0; i < commands.length; i += 4) texts.push(...(await Promise.all(commands.slice(i, i + 4).map((c) => help(c)))));
  return texts;
}

/** Command names from the program's help, `help` itself left out. */
function commandNames(text: string): string[] {
  const section = text.split(/^Commands:$/m)[1] ?? '';
  const names = [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]);
  return names.filter((n) => n !== 'help');
}

/**
 * The long options a help text defines (its Options section, and sections such as `queue add`'s
 * "Queue options:" that a command adds), not those its descriptions mention.
 */
function longOptions(text: string): string[] {
  const sections = text.split(/^(?:[A-Z][a-z]* )?[Oo]ptions:$/m).slice(1);
  return sections.flatMap((section) =>
    [...section.split(/^\S.*$/m)[0].matchAll(/^ {2}(?:-\w, )?(--[a-z][\w-]*)/gm)].map((m) => m[1]).filter((o) => o !== '--help'),
  );
}

/** Files under `dir` whose names end in `ending` (node_modules left out). */
function filesEndingIn(dir: string, ending: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : filesEndingIn(p, ending);
    return e.name.endsWith(ending) ? [p] : [];
  });
}

const sourceFiles = (dir: string) => filesEndingIn(dir, '.ts');
const markdownFiles = (dir: string) => filesEndingIn(dir, '.md');

const BREAK = Symbol('interpolated');
type Piece = string | typeof BREAK;

/** A message expression as literal text and breaks where a value is interpolated or computed. */
function pieces(node: ts.Expression): Piece[] {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return [node.text];
  if (ts.isParenthesizedExpression(node)) return pieces(node.expression);
  if (ts.isTemplateExpression(node)) return [node.head.text, ...node.templateSpans.flatMap((s): Piece[] => [BREAK, s.literal.text])];
  if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken) return [...pieces(node.left), ...pieces(node.right)];
  return [BREAK];
}

const MIN_KEY = 15;

/**
 * The stable text a reader would search for: the message's first literal run (the text before the
 * first interpolated value, or after it when the message opens with a name), trimmed of the
 * punctuation that joins it to the value. Null when no run is long enough to say anything.
 */
function stableText(node: ts.Expression): string | null {
  const runs: string[] = [''];
  for (const p of pieces(node)) {
    if (p === BREAK) runs.push('');
    else runs[runs.length - 1] += p;
  }
  for (const run of runs) {
    const text = squash(run)
      .replace(/^[\s;:,.)]+/, '')
      .trimEnd();
    if (text.length >= MIN_KEY) return text;
  }
  return null;
}

interface Message {
  where: string;
  text: string | null;
}

const ERROR_BASES = new Set(['UserError', 'AbortedError', 'LockTimeoutError', 'UniqueViolationError']);

/**
 * Every message a user can be stopped with: the arguments of `new <user-facing error>(...)`, the
 * `super(...)` of the classes that extend one, and the failure text of each preflight check
 * (`verdict(name, ok, good, bad)`), which reaches the user as a refusal.
 */
function userMessages(): Message[] {
  const files = sourceFiles(path.join(root, 'src')).map((f) => ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true));
  const classes = new Set(ERROR_BASES);
  // Subclasses of subclasses, in whatever order the files come.
  for (let grew = true; grew;) {
    grew = false;
    for (const sf of files) {
      ts.forEachChild(sf, function find(node) {
        if (ts.isClassDeclaration(node) && node.name && !classes.has(node.name.text)) {
          const base = node.heritageClauses?.flatMap((h) => h.types).find((t) => ts.isIdentifier(t.expression) && classes.has(t.expression.text));
          if (base) {
            classes.add(node.name.text);
            grew = true;
          }
        }
        ts.forEachChild(node, find);
      });
    }
  }
  const found: Message[] = [];
  for (const sf of files) {
    const at = (node: ts.Node) => `${path.relative(root, sf.fileName)}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    const visit = (node: ts.Node, inErrorClass: boolean): void => {
      if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && classes.has(node.expression.text) && node.arguments?.[0]) {
        found.push({ where: at(node), text: stableText(node.arguments[0]) });
      }
      if (inErrorClass && ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.SuperKeyword && node.arguments[0]) {
        found.push({ where: at(node), text: stableText(node.arguments[0]) });
      }
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'verdict' && node.arguments.length === 4) {
        found.push({ where: at(node), text: stableText(node.arguments[3]) });
      }
      const errorClass = ts.isClassDeclaration(node) ? !!node.name && classes.has(node.name.text) : inErrorClass;
      ts.forEachChild(node, (child) => visit(child, errorClass));
    };
    visit(sf, false);
  }
  return found;
}

describe('the manual', () => {
  const docs = readdirSync(docsDir)
    .filter((f) => f.endsWith('.md'))
    .map((f) => readFileSync(path.join(docsDir, f), 'utf8'))
    .join('\n')
    .concat('\n', troubleshootingText());

  it('has every relative link in docs/ and the READMEs lead to a file that exists', () => {
    const pages = [
      ...markdownFiles(docsDir),
      path.join(root, 'README.md'),
      ...markdownFiles(path.join(root, 'src')),
      ...markdownFiles(path.join(root, 'test')),
      ...markdownFiles(path.join(root, 'scripts')),
    ];
    expect(pages.length).toBeGreaterThan(40);
    const broken: string[] = [];
    for (const page of pages) {
      const text = readFileSync(page, 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
        const file = target.split('#')[0];
        if (!existsSync(path.resolve(path.dirname(page), file))) broken.push(`${path.relative(root, page)}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('documents every long option of every command', async () => {
    const top = await help([]);
    const commands = commandNames(top);
    // The list is read from the help; a parser that found nothing would pass vacuously.
    expect(commands).toEqual(expect.arrayContaining(['migrate', 'plan', 'backfill', 'verify', 'contract', 'restore', 'cleanup', 'history', 'status', 'set']));
    const missing: string[] = [];
    // A command with commands of its own (`queue`) is checked through each of them.
    const commandHelps = await helps(commands.map((command) => [command]));
    const leaves = commands.flatMap((command, i) => {
      const subs = commandNames(commandHelps[i]);
      return subs.length ? subs.map((sub) => [command, sub]) : [[command]];
    });
    expect(leaves).toEqual(
      expect.arrayContaining([
        ['queue', 'add'],
        ['queue', 'run'],
      ]),
    );
    const leafHelps = await helps(leaves);
    for (const [i, leaf] of leaves.entries()) {
      const options = longOptions(leafHelps[i]);
      expect(options.length, `${leaf.join(' ')} --help lists no options`).toBeGreaterThan(0);
      for (const option of options) {
        // Whole option only: --url must not be found inside --url-file.
        if (!new RegExp(`(?<![\\w-])${option}(?![\\w-])`).test(docs)) missing.push(`${leaf.join(' ')} ${option}`);
      }
    }
    expect(missing, 'options in --help that no page of docs/ mentions').toEqual([]);
  });

  it("has a line in docs/crash-and-resume.md's fault matrix for every cell test/fault-matrix.test.ts runs, and no other", () => {
    const page = readFileSync(path.join(docsDir, 'crash-and-resume.md'), 'utf8');
    const section = page.split(/^## The fault matrix$/m)[1]?.split(/^## /m)[0] ?? '';
    const lines = [...section.matchAll(/^\| ([^|]+?) \| ([^|]+?) \|/gm)].map((m) => `${m[1]} / ${m[2]}`).filter((l) => l !== 'phase / fault');
    expect(lines.sort()).toEqual(PHASES.flatMap((phase) => FAULTS.map((fault) => `${phase} / ${fault}`)).sort());
  });

  it("names a test that exists for every line of docs/crash-and-resume.md's cells beyond one server's phases", () => {
    const page = readFileSync(path.join(docsDir, 'crash-and-resume.md'), 'utf8');
    const section = page.split(/^## Beyond one server's phases$/m)[1]?.split(/^## /m)[0] ?? '';
    const rows = [...section.matchAll(/^\| (?!cell \|)(?!---)(.+) \|$/gm)].map((m) => m[1]);
    expect(rows.length).toBeGreaterThanOrEqual(7);
    for (const row of rows) {
      const tests = [
        ...row
          .split(' | ')
          .at(-1)!
          .matchAll(/`(test\/[^`]+\.test\.ts)`/g),
      ].map((m) => m[1]);
      expect(tests, row).not.toEqual([]);
      for (const test of tests) expect(existsSync(path.join(root, test)), test).toBe(true);
    }
  });

  it('explains every message a user can be refused with in docs/troubleshooting.md', () => {
    const page = squash(troubleshootingText());
    const messages = userMessages();
    // Hundreds today: an extraction that broke and found none must not pass.
    expect(messages.filter((m) => m.text).length).toBeGreaterThan(250);
    const missing = messages.filter((m) => m.text && !page.includes(m.text)).map((m) => `${m.where}: ${m.text}`);
    expect(missing, 'messages docs/troubleshooting.md does not name (quote their leading text there)').toEqual([]);
  });

  it('quotes in each docs/troubleshooting.md entry only words the code still says', () => {
    // The other way round from the test above: a message reworded in the code must not leave its old
    // entry behind. Each entry's quoted message is cut where the code composes (an elided part, a colon,
    // a semicolon, a parenthesis), and every piece of eight characters or more must be in the source as
    // written, its strings joined where a '+' splits them over lines.
    const source = sourceFiles(path.join(root, 'src'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n')
      .replace(/(['"`])\s*\+\s*(['"`])/g, '');
    const said = squash(source);
    const entries = [...troubleshootingText().matchAll(/^- `([^`]+)`/gm)].map((m) => m[1]);
    expect(entries.length).toBeGreaterThan(300);
    const stale = entries.filter((entry) =>
      entry
        .split(/…|[:;] | \(|\)/)
        .map((piece) => squash(piece).trim())
        .some((piece) => piece.length >= 8 && !said.includes(piece)),
    );
    expect(stale, 'entries quoting words no message in src/ says').toEqual([]);
  });
});
