// The PostgreSQL engine's unit tests: under postgres/, one file per module of src/engines/postgres/ at the same path
// (`*.cases.ts`), imported here into one test file so that they share one worker process: vitest
// starts a process per test file, which costs more than all of these tests together (test/unit/README.md).
import { expect, it } from 'vitest';
import { casesNotImported } from './all-cases.js';
import './postgres/capture/trigger/capture-function.cases.js';
import './postgres/in-place/in-place-steps.cases.js';
import './postgres/in-place/part-kind.cases.js';
import './postgres/in-place/probe-work.cases.js';
import './postgres/schema/alter.cases.js';
import './postgres/schema/exact.cases.js';
import './postgres/schema/generated-names.cases.js';
import './postgres/server/alter-clauses.cases.js';
import './postgres/server/alter-names.cases.js';
import './postgres/server/connect.cases.js';
import './postgres/server/helper-store.cases.js';

it('runs every *.cases.ts under postgres/', () => {
  expect(casesNotImported(import.meta.url, 'postgres')).toEqual([]);
});
