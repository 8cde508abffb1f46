import type { Settings, Status } from '../core/run/run-state.js';

/** What a run's control endpoint answers, and how a client reads it without taking anything on trust. */

export type ControlAnswer =
  | {
      ok: true;
      /** The table the server was started for: lets a client pick a migration by its short name. */
      table: string;
      status: Status;
      settings: Settings;
      paused: boolean;
      cutoverRequested: boolean;
      abortReason: string | null;
      /** The run's control TCP port on 127.0.0.1, null when it has none: how `--port N` finds the run's token file. */
      port: number | null;
    }
  | { ok: false; error: string };

export type RunningAnswer = Extract<ControlAnswer, { ok: true }>;

type Kind = 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array' | 'absent';

const NUMBER: Kind[] = ['number'];
const TEXT: Kind[] = ['string'];

/** The fields a client reads, and what each may be; `absent` where a run of an earlier version leaves it out. */
const RUNNING: Record<string, Kind[]> = {
  table: TEXT,
  status: ['object'],
  settings: ['object'],
  paused: ['boolean'],
  cutoverRequested: ['boolean'],
  abortReason: ['string', 'null'],
  port: ['number', 'null', 'absent'],
};
const STATUS: Record<string, Kind[]> = {
  command: ['string', 'absent'],
  alter: TEXT,
  engine: TEXT,
  phase: TEXT,
  state: TEXT,
  rowsCopied: NUMBER,
  rowsEstimated: NUMBER,
  percent: NUMBER,
  rowsPerSec: NUMBER,
  etaSeconds: ['number', 'null'],
  changesApplied: NUMBER,
  rowsUpdated: NUMBER,
  backlog: NUMBER,
  lagMs: ['number', 'null'],
  maxLagSeenMs: NUMBER,
  throttleReason: ['string', 'null'],
  retrying: ['string', 'null', 'absent'],
  cutoverAttempts: NUMBER,
  cutoverLockedMs: ['number', 'null'],
  revertWindowUntil: ['string', 'null', 'absent'],
  oldSnapshots: ['array', 'absent'],
  set: ['array', 'absent'],
  untrustedFlags: ['object', 'absent'],
};
const SETTINGS: Record<string, Kind[]> = {
  chunkTimeMs: NUMBER,
  maxLagMs: NUMBER,
  maxLoad: ['object'],
  criticalLoad: ['object'],
  maxRowsPerSec: NUMBER,
  niceRatio: NUMBER,
  maxRedoFill: NUMBER,
  maxWriterSlowdown: ['number', 'absent'],
};

/**
 * One line of a control endpoint's answer, checked field by field before anything reads it: what
 * answers may be a run of another version, or anything listening on a TCP port. An answer that is
 * not one is an error naming the first field that is wrong, so a client says so in one line.
 */
export function readAnswer(line: string): ControlAnswer {
  let answer: unknown;
  try {
    answer = JSON.parse(line);
  } catch {
    throw new Error('the control endpoint did not answer in JSON: is it shadowcut?');
  }
  const wrong = (field: string) => new Error(`the control endpoint's answer is not one shadowcut gives (${field}): is it shadowcut, of this version?`);
  if (!isObject(answer) || typeof answer.ok !== 'boolean') throw wrong('ok');
  if (!answer.ok) {
    if (typeof answer.error !== 'string') throw wrong('error');
    // The error is shown as the client's one line.
    return { ok: false, error: answer.error.replace(/\s+/g, ' ') };
  }
  const problem =
    fieldsWrong(answer, RUNNING, '') ??
    fieldsWrong(answer.status as Record<string, unknown>, STATUS, 'status.') ??
    fieldsWrong(answer.settings as Record<string, unknown>, SETTINGS, 'settings.') ??
    valuesWrong(answer.settings as Record<string, unknown>, ['maxLoad', 'criticalLoad'], 'number', 'settings.') ??
    valuesWrong(answer.status as Record<string, unknown>, ['untrustedFlags'], 'string', 'status.') ??
    listWrong((answer.status as Record<string, unknown>).oldSnapshots, 'object', 'status.oldSnapshots') ??
    listWrong((answer.status as Record<string, unknown>).set, 'string', 'status.set');
  if (problem) throw wrong(problem);
  return answer as RunningAnswer;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kindOf(value: unknown): Kind {
  if (value === undefined) return 'absent';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  const kind = typeof value;
  return kind === 'string' || kind === 'number' || kind === 'boolean' || kind === 'object' ? kind : 'absent';
}

/** The first field of `object` whose kind is not one `spec` allows (a number must be finite), or null. */
function fieldsWrong(object: Record<string, unknown>, spec: Record<string, Kind[]>, prefix: string): string | null {
  for (const [field, kinds] of Object.entries(spec)) {
    const value = object[field];
    const kind = kindOf(value);
    if (!kinds.includes(kind) || (kind === 'number' && !Number.isFinite(value))) return `${prefix}${field}`;
  }
  return null;
}

/** The first of these object fields (when present) holding a value of another kind, or null. */
function valuesWrong(object: Record<string, unknown>, fields: string[], kind: Kind, prefix: string): string | null {
  for (const field of fields) {
    const map = object[field];
    if (map === undefined) continue;
    const bad = Object.entries(map as Record<string, unknown>).find(([, v]) => kindOf(v) !== kind);
    if (bad) return `${prefix}${field}.${bad[0]}`;
  }
  return null;
}

function listWrong(list: unknown, kind: Kind, name: string): string | null {
  if (list === undefined) return null;
  const at = (list as unknown[]).findIndex((v) => kindOf(v) !== kind || (kind === 'object' && !isObject(v)));
  return at < 0 ? null : `${name}[${at}]`;
}
