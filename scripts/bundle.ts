// `npm run build`, after tsc: the CLI and every module it imports (ours, mysql2, pg, zongji,
// commander) as a few files under dist/bin: shadowcut.js, which package.json's `bin` names, and a
// chunk per engine beside it in chunks/.
//
// Why: Node 20 spends most of a CLI start finding, reading and compiling some 400 separate modules.
// One file starts in about 0.13 CPU-seconds against 0.22. A DBA does not feel that; the test suite,
// which starts the CLI about a thousand times on two cores, does, and so does `queue run`, which starts
// one CLI per stage. The modules under dist/src stay as tsc wrote them, for the tests that import them.
//
// Each engine is its own chunk because engines/index.ts imports them when a URL names one: a
// PostgreSQL run never reads MySQL's driver (2.4 MB with its character sets), and status, pause or
// any command that only talks to a run's control socket reads neither (0.6 MB in all, not 3.7 MB).
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = path.join(root, 'dist/bin');

const result = await build({
  entryPoints: { shadowcut: path.join(root, 'dist/src/cli/main.js') },
  outdir,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  // The drivers are CommonJS and call require() for Node's own modules; an ES module has no require
  // of its own, so each file makes one.
  banner: { js: "import { createRequire as __shadowcutRequire } from 'node:module'; const require = __shadowcutRequire(import.meta.url);" },
  // pg tries `require('pg-native')` only when asked for its native binding, which shadowcut never does.
  external: ['pg-native'],
  write: false,
  logLevel: 'warning',
});

// The chunks' names change with their content: an earlier build's would stay behind.
rmSync(outdir, { recursive: true, force: true });
for (const file of result.outputFiles) {
  mkdirSync(path.dirname(file.path), { recursive: true });
  // esbuild writes the code in ASCII but keeps a few comments of the drivers as they are, and one
  // character past ASCII makes Node decode and compile a whole file as a two-byte string: some 30 ms
  // of each start. Those characters are only in comments (the code's are escaped), so escaping them
  // changes nothing that runs.
  const code = file.path.endsWith('.js');
  // eslint-disable-next-line no-control-regex -- the range is what is not ASCII
  const text = code ? file.text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : file.text;
  writeFileSync(file.path, text, { mode: file.path.endsWith('shadowcut.js') ? 0o755 : 0o644 });
}
