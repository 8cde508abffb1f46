// `npm run build`, after tsc: the CLI and every module it imports (ours, mysql2, pg, zongji,
// commander) as one file, dist/bin/shadowcut.js, which package.json's `bin` names.
//
// Why: Node 20 spends most of a CLI start finding, reading and compiling some 400 separate modules.
// One file starts in about 0.13 CPU-seconds against 0.22. A DBA does not feel that; the test suite,
// which starts the CLI about a thousand times on two cores, does, and so does `queue run`, which starts
// one CLI per stage. The modules under dist/src stay as tsc wrote them, for the tests that import them.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

await build({
  entryPoints: [path.join(root, 'dist/src/cli/main.js')],
  outfile: path.join(root, 'dist/bin/shadowcut.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  // The drivers are CommonJS and call require() for Node's own modules; an ES module has no require
  // of its own, so the bundle makes one.
  banner: { js: "import { createRequire as __shadowcutRequire } from 'node:module'; const require = __shadowcutRequire(import.meta.url);" },
  // pg tries `require('pg-native')` only when asked for its native binding, which shadowcut never does.
  external: ['pg-native'],
  logLevel: 'warning',
});
