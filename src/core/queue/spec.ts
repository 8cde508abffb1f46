import os from 'node:os';
import path from 'node:path';
import { UserError } from '../engine/errors.js';
import { STAGES, type QueueSpec, type Stage } from '../engine/ports/queue.js';
import { QueueWindow } from './window.js';

/** `queue add`'s own options, and whether each takes a value; everything else is the stage's. */
const OWN: Record<string, boolean> = {
  '--url': true,
  '--url-file': true,
  '--stage': true,
  '--window': true,
  '--tz': true,
  '--after': true,
  '--postpone': false,
  '--postpone-cutover': false,
  '--json': false,
};

/**
 * Stage options a queued entry may not carry. The queue's rows are read by every runner and must
 * hold no secret (a replica's URL has a password) and no path or code the runner's host would act on
 * (hooks run programs, a throttle query runs SQL with the runner's account): those come from
 * `queue run`'s own command line. The rest is the runner's to decide.
 */
const REFUSED: Record<string, string> = {
  '--execute': 'the runner executes every entry',
  '--resume': 'the runner resumes an interrupted entry by itself',
  '--replica': 'give replicas to "queue run" (their URLs must not be stored in the queue)',
  '--hooks-dir': 'give it to "queue run": hooks run programs on the runner\'s host',
  '--report-dir': 'give it to "queue run"',
  '--throttle-query': 'give it to "queue run"',
  '--control-socket': 'the runner reaches each entry by its table',
  '--control-port': 'the runner reaches each entry by its table',
  '--metrics-port': 'give it to "queue run"',
  '--panic-flag-file': 'give it to "queue run"',
  '--throttle-flag-file': 'give it to "queue run"',
  '--postpone-cutover-flag-file': 'use --postpone-cutover and "queue cutover <id>"',
};

export interface AddRequest {
  url?: string;
  urlFile?: string;
  json: boolean;
  spec: QueueSpec;
}

/** `queue add`'s arguments: the queue's own options, the table, and the stage's options kept in order. */
export function parseAdd(argv: string[]): AddRequest {
  const own: Record<string, string | boolean> = {};
  const args: string[] = [];
  const tables: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = splitOption(argv[i]);
    const value = () => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) throw new UserError(`${name} needs a value`);
      return next;
    };
    if (name in REFUSED) throw new UserError(`queue add: ${name} is not for a queued entry: ${REFUSED[name]}`);
    if (name in OWN) own[name] = OWN[name] ? value() : true;
    else if (name === '--table') tables.push(value());
    // A fleet's targets file is read by the runner, from its own working directory (cron's is the home): kept absolute.
    else if (name === '--targets') args.push(name, path.resolve(value()));
    else args.push(argv[i]);
  }
  const [table, ...set] = tables;
  if (table === undefined) throw new UserError('queue add: --table is required');
  if (own['--after'] !== undefined && !/^\d+$/.test(String(own['--after'])))
    throw new UserError(`queue add: --after ${String(own['--after'])} is not an entry's id`);
  const spec: QueueSpec = {
    stage: String(own['--stage'] ?? 'migrate') as Stage,
    table,
    ...(set.length ? { set } : {}),
    args,
    ...(own['--window'] !== undefined ? { window: String(own['--window']) } : {}),
    ...(own['--tz'] !== undefined ? { tz: String(own['--tz']) } : {}),
    ...(own['--after'] !== undefined ? { after: Number(own['--after']) } : {}),
    ...(own['--postpone'] ? { postponed: true } : {}),
    ...(own['--postpone-cutover'] ? { postponeCutover: true } : {}),
    addedBy: `${os.userInfo().username}@${os.hostname()}`,
  };
  const wrong = specProblem(spec);
  if (wrong) throw new UserError(`queue add: ${wrong}`);
  return {
    url: own['--url'] as string | undefined,
    urlFile: own['--url-file'] as string | undefined,
    json: own['--json'] === true,
    spec,
  };
}

/**
 * What makes a spec one no runner may run, or null. `queue add` refuses it; a runner finds it again
 * in a row someone wrote by hand (anyone who can write the table can), and fails the entry instead
 * of running it: the stage's name becomes its command, and its arguments its argv.
 */
export function specProblem(spec: QueueSpec): string | null {
  if (spec.unproven) return spec.unproven;
  if (!STAGES.includes(spec.stage)) return `--stage ${String(spec.stage)}: one of ${STAGES.join(', ')}`;
  if (typeof spec.table !== 'string' || spec.table === '' || spec.table.startsWith('-')) return `--table ${String(spec.table)} is not a table`;
  const set = setProblem(spec);
  if (set) return set;
  if (!Array.isArray(spec.args) || spec.args.some((a) => typeof a !== 'string')) return 'the stage options are not a list of words';
  for (const arg of spec.args) {
    if (arg === '--') return '"--" ends the options: the stage takes none after it';
    const [name] = splitOption(arg);
    if (name in REFUSED) return `${name} is not for a queued entry: ${REFUSED[name]}`;
    if (name in OWN || name === '--table') return `${name} is the queue's, not the stage's`;
  }
  try {
    if (spec.window !== undefined) new QueueWindow(String(spec.window), spec.tz);
    else if (spec.tz !== undefined) return '--tz is the time zone of --window; give the window too';
  } catch (error) {
    return (error as Error).message;
  }
  if (spec.after !== undefined && !(Number.isInteger(spec.after) && spec.after > 0)) return `--after ${String(spec.after)} is not an entry's id`;
  if (spec.postponeCutover && spec.stage !== 'migrate') return '--postpone-cutover is for a migrate entry';
  return null;
}

/** What is wrong with an entry's further tables (several tables in one cut-over), or null. */
function setProblem(spec: QueueSpec): string | null {
  if (spec.set === undefined) return null;
  if (!Array.isArray(spec.set) || spec.set.length === 0) return 'the further tables of the entry are not a list of tables';
  for (const t of spec.set) if (typeof t !== 'string' || t === '' || t.startsWith('-')) return `--table ${String(t)} is not a table`;
  if (spec.stage !== 'migrate') return `several --table are for a migrate entry (one cut-over swaps them all); a ${String(spec.stage)} entry takes one`;
  const tables = entryTables(spec);
  if (new Set(tables).size !== tables.length) return `a table is named twice in ${tables.join(', ')}`;
  const alters = Array.isArray(spec.args) ? optionValues(spec.args, '--alter').length : 0;
  if (alters !== tables.length) return `${tables.length} tables and ${alters} --alter: give each --table its own --alter, in the same order`;
  return null;
}

/** Every table of an entry: one, or the tables one migrate entry swaps in one cut-over. */
export function entryTables(spec: QueueSpec): string[] {
  // Defensive: a row written by hand is read by every runner before its spec is judged.
  return [spec.table, ...(Array.isArray(spec.set) ? spec.set : [])];
}

/** `--name=value` as [name, value]; any other argument as [itself, undefined]. */
function splitOption(arg: string): [string, string | undefined] {
  if (!arg.startsWith('--')) return [arg, undefined];
  const eq = arg.indexOf('=');
  return eq < 0 ? [arg, undefined] : [arg.slice(0, eq), arg.slice(eq + 1)];
}

/** The value of `name` among a stage's options, if given (as `--name value` or `--name=value`). */
export function optionValue(args: string[], name: string): string | undefined {
  return optionValues(args, name)[0];
}

/** Every value of `name` among a stage's options, in order (a set's `--alter`s). */
export function optionValues(args: string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const [n, inline] = splitOption(args[i]);
    if (n !== name) continue;
    if (inline !== undefined) values.push(inline);
    else if (i + 1 < args.length) values.push(args[++i]);
  }
  return values;
}
