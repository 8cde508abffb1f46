// The randomized tester's Citus path (test/chaos/citus-scenario.ts) on a fixed set of seeds in every
// `npm test`: random tables distributed with a co-located child, random ALTERs (in place part by part
// where Citus can, copied otherwise), writers and a reader through the coordinator, a SIGKILL in the
// copy, the verification or the cut-over and a resume; every run equal to a twin database given
// Citus's own ALTER, on every node, or refused as Citus refuses.
import { describe, expect, it } from 'vitest';
import { chaos } from './chaos/run.js';
import { citusUnavailable } from './support/citus.js';

const unavailable = citusUnavailable();
if (unavailable) console.warn(`chaos-citus.test.ts skipped: ${unavailable}`);

/** Seeds that pass through a copy and in place, killed in each phase, and one refused like Citus. */
const SEEDS = [12, 14, 16, 19, 20];

describe.skipIf(unavailable !== null)('the randomized tester on a Citus cluster', () => {
  it(`seeds ${SEEDS.join(', ')}: every run equal to the twin given Citus's own ALTER, or refused as Citus refuses`, async () => {
    const outcomes = await chaos({ engines: ['postgres'], paths: ['citus'], seeds: SEEDS, minutes: 0, rows: 1000, json: null }, {}, () => {});
    const failed = outcomes.filter((o) => o.verdict === 'FAIL' || o.verdict === 'refused');
    expect(failed.map((o) => `seed ${o.seed}: ${o.verdict} - ${o.reason}`)).toEqual([]);
    expect(outcomes.filter((o) => o.verdict === 'pass').length).toBeGreaterThanOrEqual(3);
    expect(outcomes.filter((o) => o.faults.length && o.verdict === 'pass').length).toBeGreaterThanOrEqual(2);
  }, 900_000);
});
