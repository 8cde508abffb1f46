// A `*.cases.ts` file runs only when an engine's test file imports it: one left out would pass unseen.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `*.cases.ts` files under `folder` (beside the test file at `testUrl`) that the test file does not import. */
export function casesNotImported(testUrl: string, folder: string): string[] {
  const testFile = fileURLToPath(testUrl);
  const here = dirname(testFile);
  const text = readFileSync(testFile, 'utf8');
  const files = readdirSync(join(here, folder), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.cases.ts'));
  return files
    .map((f) => `./${relative(here, join(here, folder, f)).replace(/\.ts$/, '.js')}`)
    .filter((spec) => !text.includes(`import '${spec}';`))
    .sort();
}
