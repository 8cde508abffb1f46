// `npm run lint`'s structure check: no file under src/ longer than MAX_LINES (the runner under
// RUNNER_MAX_LINES), nothing in src/core importing from src/engines, and nothing in src/engines importing from src/core
// outside src/core/engine. Long files hide more than one concept, and core must stay
// engine-neutral (DESIGN.md, "One runner, two engines"): an engine is reached through the Engine
// interface only. The other way, src/core/engine is the kit: everything an engine may use of core
// (the contract, check builders, retry, the trigger source, exact comparison, ...), so a third engine
// learns what it may borrow from one folder, not by reading both engines. Only src/cli/output.ts writes
// to stdout and stderr: it escapes control and bidi characters in every line (core/report/shown-text.ts),
// and a write beside it would print others' text raw. The server tests' fixed sleeps only go down (a ratchet): a test waits on a
// condition, not on a clock that a loaded machine outruns. Prints each offending file and exits 1;
// run from the repository's root.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const MAX_LINES = 350;
/** The runner only orders the phases (src/core/migrate/README.md): what it grows is a module of its own. */
const RUNNER_MAX_LINES = 250;
const root = process.cwd();
const src = join(root, 'src');
const core = join(src, 'core');
const engines = join(src, 'engines');
const kit = join(core, 'engine');
const runner = join(core, 'migrate', 'runner.ts');
/** The one writer of stdout and stderr; elsewhere only whether they are terminals may be asked. */
const output = join(src, 'cli', 'output.ts');
const RAW_OUTPUT = /\bprocess\.(?:stdout|stderr)\b(?!\.isTTY\b)|\bconsole\.\w+/;
/** Fixed sleeps left in the tests (\`sleep(300)\`, \`setTimeout(r, 300)\`): lower it as they become waits on a condition, never raise it. */
const FIXED_SLEEPS_MAX = 40;
const FIXED_SLEEP = /(?:sleep|delay|wait)\(\s*[0-9_]+\s*\)|setTimeout\([^,()]*(?:\([^)]*\))?[^,()]*,\s*[0-9_]+\s*\)/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|cts|js|mjs)$/.test(name) ? [path] : [];
  });
}

/** Lines as `wc -l` counts them: newline characters. */
function lineCount(text: string): number {
  return text.split('\n').length - 1;
}

/** Every module specifier of `import ... from`, `export ... from`, bare `import '...'` and `import('...')`. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/\b(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) found.push(m[1]);
  return found;
}

const within = (path: string, dir: string) => path === dir || path.startsWith(dir + sep);

const problems: string[] = [];
/** Imports from src/engines into src/core outside src/core/engine; 0 when the check passes. */
let kitEscapes = 0;
for (const file of sourceFiles(src)) {
  const text = readFileSync(file, 'utf8');
  const name = relative(root, file);
  const lines = lineCount(text);
  if (lines > MAX_LINES) problems.push(`${name}: ${lines} lines (at most ${MAX_LINES}): split it into modules of one concept each`);
  if (file !== output && RAW_OUTPUT.test(text))
    problems.push(`${name}: writes to stdout or stderr itself: print through src/cli/output.ts, which escapes what others wrote`);
  if (file === runner && lines >= RUNNER_MAX_LINES)
    problems.push(`${name}: ${lines} lines (under ${RUNNER_MAX_LINES}): move a phase's work into a module of its own`);
  if (within(file, engines)) {
    for (const spec of specifiers(text)) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec);
      if (within(target, core) && !within(target, kit)) {
        kitEscapes++;
        problems.push(`${name}: imports ${spec}: an engine uses core only through src/core/engine (the kit); move what it needs there`);
      }
    }
  }
  if (!within(file, core)) continue;
  for (const spec of specifiers(text)) {
    if (!spec.startsWith('.')) continue;
    if (within(resolve(dirname(file), spec), engines)) problems.push(`${name}: imports ${spec}: core must not depend on an engine`);
  }
}

const sleeps = sourceFiles(join(root, 'test'))
  .filter((file) => file.endsWith('.test.ts'))
  .map((file) => [relative(root, file), [...readFileSync(file, 'utf8').matchAll(FIXED_SLEEP)].length] as const);
const sleepCount = sleeps.reduce((n, [, count]) => n + count, 0);
if (sleepCount > FIXED_SLEEPS_MAX) {
  const most = [...sleeps].sort((a, b) => b[1] - a[1]).slice(0, 5);
  problems.push(
    `test/: ${sleepCount} fixed sleeps (at most ${FIXED_SLEEPS_MAX}): wait on a condition instead (waitFor in test/support/run.ts); most in ${most.map(([f, n]) => `${f} (${n})`).join(', ')}`,
  );
}

if (problems.length) {
  process.stderr.write(`structure check failed:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(
  `structure check: every file under src/ is at most ${MAX_LINES} lines, the runner under ${RUNNER_MAX_LINES}, only src/cli/output.ts writes to stdout and stderr, src/core imports nothing from src/engines, src/engines imports ${kitEscapes} times from src/core outside src/core/engine, and the tests hold ${sleepCount} fixed sleeps (at most ${FIXED_SLEEPS_MAX})\n`,
);
