import type { CheckResult } from '../types.js';

/**
 * One preflight check, or a tight family of them (e.g. the binlog settings). An engine registers
 * its checks in order in `engines/<engine>/checks/index.ts`, and every one of them runs: a refusal
 * is a failed result, not a throw, so one dry run names every problem instead of the first.
 * `Ctx` is what the engine's checks read: its plan, a pool, whether the run resumes.
 */
export interface Check<Ctx> {
  readonly name: string;
  run(ctx: Ctx): Promise<CheckResult | CheckResult[]>;
}

/** A check's result: what was found when `ok`, else what is wrong and how to fix it. */
export function verdict(name: string, ok: boolean, good: string, bad: string): CheckResult {
  return { name, ok, message: ok ? good : bad };
}

/** Not a refusal, only worth pointing out (a dry run prints it). */
export function note(name: string, message: string): CheckResult {
  return { name, ok: true, message };
}

/** Every failed check's message, on one line: what a refusal says. */
export function refusals(results: readonly CheckResult[]): string {
  return results
    .filter((c) => !c.ok)
    .map((c) => c.message)
    .join('; ');
}

/** Runs every check, in order, and returns all of their results. */
export async function runChecks<Ctx>(checks: readonly Check<Ctx>[], ctx: Ctx): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    // Named, so a check that breaks (not one that fails) says which it was.
    const found = await check.run(ctx).catch((error: Error) => {
      throw Object.assign(error, { message: `the ${check.name} check could not run: ${error.message}` });
    });
    results.push(...(Array.isArray(found) ? found : [found]));
  }
  return results;
}
