/**
 * The fault matrix's axes (test/fault-matrix.test.ts), shared with the manual's check
 * (test/docs.test.ts): docs/crash-and-resume.md has a line for every cell, and no other.
 */
export const FAULTS = ['the server restarted', "shadowcut's sessions killed"] as const;
/** The phases a fault lands in, as the run's JSON log names them. */
export const PHASES = ['setup', 'copy', 'catch-up', 'verify', 'postponed', 'cutover', 'cleanup', 'revert window'] as const;
export type Fault = (typeof FAULTS)[number];
export type Phase = (typeof PHASES)[number];
