// The MySQL engine's unit tests: under mysql/, one file per module of src/engines/mysql/ at the same path
// (`*.cases.ts`), imported here into one test file so that they share one worker process: vitest
// starts a process per test file, which costs more than all of these tests together (test/unit/README.md).
import { expect, it } from 'vitest';
import { casesNotImported } from './all-cases.js';
import './mysql/capture/binlog/positions.cases.js';
import './mysql/capture/binlog/statement.cases.js';
import './mysql/capture/same-rows.cases.js';
import './mysql/capture/trigger/capture-triggers.cases.js';
import './mysql/copy/checksum.cases.js';
import './mysql/copy/data-directory.cases.js';
import './mysql/copy/deferred-indexes.cases.js';
import './mysql/in-place/probe-shape.cases.js';
import './mysql/schema/alter.cases.js';
import './mysql/schema/column-map.cases.js';
import './mysql/schema/implicit-default.cases.js';
import './mysql/schema/inspect.cases.js';
import './mysql/schema/key-choice.cases.js';

it('runs every *.cases.ts under mysql/', () => {
  expect(casesNotImported(import.meta.url, 'mysql')).toEqual([]);
});
