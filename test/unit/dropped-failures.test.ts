import { afterEach, describe, expect, it } from 'vitest';
import { failedAs, ignoreFailure, traceDroppedFailures } from '../../src/core/engine/errors.js';

// Issue 62, item 4: a failure dropped on purpose leaves a trace with --verbose: its reason and the error.
describe('dropped failures', () => {
  afterEach(() => traceDroppedFailures(null));

  it('say nothing by default, and with a sink (--verbose) tell the error and the reason', async () => {
    const told: string[] = [];
    await Promise.reject(new Error('boom')).catch(ignoreFailure('a cleanup after the error that matters'));
    expect(told).toEqual([]);
    traceDroppedFailures((line) => told.push(line));
    await Promise.reject(new Error('boom')).catch(ignoreFailure('a cleanup after the error that matters'));
    const value = await Promise.reject(Object.assign(new Error(''), { code: 'ECONNREFUSED' })).catch(failedAs(null, 'not answering: no run'));
    expect(value).toBeNull();
    expect(told).toEqual(['dropped a failure (boom): a cleanup after the error that matters', 'dropped a failure (ECONNREFUSED): not answering: no run']);
  });
});
