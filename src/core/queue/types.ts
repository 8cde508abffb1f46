/** The runner's own events, for `queue run --hooks-dir` (the stages run theirs). */
export const QUEUE_EVENTS = ['queue-start', 'queue-complete', 'queue-failure', 'queue-suspend'] as const;
export type QueueEvent = (typeof QUEUE_EVENTS)[number];
