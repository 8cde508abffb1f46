import { CLOSING, ignoreFailure, UserError } from '../core/engine/errors.js';
import type { Engine } from '../core/engine/types.js';
import { redactUrl } from '../core/engine/connect/secrets.js';
import { readTrustedFile } from '../core/engine/trusted-files.js';
import { fleetFailure, runFleet, type FleetTarget } from '../core/fleet/fleet.js';
import { targetResume } from '../core/fleet/resume.js';
import { historyOf } from '../core/history/store.js';
import { recordStage } from '../core/history/record.js';
import { migrate } from '../core/migrate/runner.js';
import { memberReporter, type Reporter } from '../core/report/reporter.js';
import { RunState } from '../core/run/run-state.js';
import { engineForTables } from './open-engine.js';
import { optionsOf, requestOf, revertWindowMs, type Member, type MigrateOpts } from './migrate-options.js';
import { doneLines, figures, printResult } from './migrate-output.js';
import { runSettings, startOperation, type OperatorOpts } from './operator-options.js';
import type { JsonReporter } from './render.js';
import { stdout } from './output.js';

/** migrate's options, as commander parsed them, for a fleet. */
type FleetOpts = MigrateOpts & OperatorOpts & Parameters<typeof runSettings>[0];

/**
 * How long a joint cut-over's windows stay open at most when the operator gave none: they end as soon
 * as every target has swapped; this only bounds a fleet whose process is stopped in between.
 */
const JOINT_WINDOW_MS = 60 * 60_000;

/**
 * The targets of `--targets FILE`: one URL a line (blank lines and `#` comments skipped). The file holds
 * passwords and says where the run connects, as a `--url-file` does, and is refused the same way
 * when another OS user owns it, can read it or can replace it.
 */
export function readTargets(file: string): string[] {
  const urls = readTrustedFile(file, '--targets', { secret: true })
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (urls.length === 0) throw new UserError(`--targets ${file} names no target (one URL a line)`);
  const twice = urls.find((u, i) => urls.indexOf(u) !== i);
  if (twice !== undefined) throw new UserError(`--targets ${file} names ${redactUrl(twice)} twice`);
  return urls;
}

/** A target's name in messages: where it is and which database, never a password. */
export function targetLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol.startsWith('mysql') || u.protocol.startsWith('mariadb') ? '3306' : '5432')}${u.pathname}`;
  } catch {
    return redactUrl(url);
  }
}

/**
 * `migrate --targets`: the same change on every target (core/fleet/fleet.ts), each run as `migrate`
 * runs one table, with its own control socket (`--table <table>@<n>`), history and report.
 */
export async function migrateFleet(opts: FleetOpts, table: string, alter: string, output: Reporter, reporter: Reporter): Promise<void> {
  if (opts.url !== undefined) throw new UserError('give the databases once: --targets FILE, or --url (--url-file, SHADOWCUT_URL), not both');
  const urls = readTargets(String(opts.targets));
  const jointCutover = opts.jointCutover === true && opts.execute === true;
  // A joint fleet stopped midway may have targets waiting in their windows, swapped or not: each is resumed alone, with --url.
  if (opts.resume && opts.jointCutover)
    throw new UserError('--resume of a fleet with --joint-cutover is not supported: resume each target with --url and its --table');
  if (opts.jointCutover && opts.dropOld) throw new UserError('--joint-cutover keeps every old table until all targets have swapped: leave out --drop-old');
  const engines: Engine[] = [];
  const members: (Member & { label: string; engine: Engine; url: string })[] = [];
  try {
    for (const [i, url] of urls.entries()) {
      const label = targetLabel(url);
      const engine = await engineForTables(url, [table], 'migrate').catch((error: Error) => {
        throw new UserError(`target ${label}: ${error.message}`, (error as UserError).exitCode);
      });
      engines.push(engine);
      const name = engine.qualify(table);
      const state = new RunState(runSettings(opts, engine), { table: name, alter, engine: engine.kind });
      // The first target's endpoints as given; the others take their default sockets, named after the target's place.
      const own = i === 0 ? opts : { ...opts, controlSocket: undefined, controlPort: undefined, metricsPort: undefined };
      const operation = await startOperation(own, state, memberReporter(reporter, label), `${name}@${i + 1}`);
      members.push({ name, alter, state, operation, label, engine, url });
    }
    const window = opts.revertWindow === undefined ? undefined : revertWindowMs(String(opts.revertWindow));
    // --resume: each target from what it holds (core/fleet/resume.ts); those already done are only named.
    const resumes = opts.resume ? await Promise.all(members.map((m) => targetResume(m.engine, historyOf(m.engine), m.name, alter))) : members.map(() => null);
    for (const [i, r] of resumes.entries()) {
      const label = `target ${members[i].label}`;
      if (r?.kind === 'done') stdout.line(`${label}: done before (its migrate of ${members[i].name} finished ${r.finishedAt})`);
      else if (r?.kind === 'resume') stdout.line(`${label}: resuming from its checkpoint`);
      else if (r?.kind === 'fresh') stdout.line(`${label}: no checkpoint and no finished migrate of this ALTER: starting from the beginning`);
    }
    const running = members.filter((_, i) => resumes[i]?.kind !== 'done');
    const targets: FleetTarget[] = running.map((m) => ({
      label: m.label,
      state: m.state,
      run: () =>
        recordStage({
          record: opts.execute,
          engine: m.engine,
          table: m.name,
          command: 'migrate',
          stage: m.alter,
          reportDir: opts.reportDir,
          reporter,
          run: () =>
            migrate(m.engine, requestOf({ ...opts, url: m.url }, m), {
              ...optionsOf(opts, m.engine, m, reporter, false),
              resume: resumes[members.indexOf(m)]?.kind === 'resume',
              reporter: memberReporter(reporter, m.label),
              // Jointly: verified and kept in sync until all are, then swapped with a way back.
              ...(jointCutover ? { forceCopy: true, jointFleet: true, revertWindowMs: window ?? JOINT_WINDOW_MS } : {}),
            }),
          describe: (r) => ({ outcome: 'success', rowsTouched: r.rowsCopied, checks: r.checks, summary: doneLines(r), detail: figures(r) }),
          started: () => m.state.status.timeline.length > 0,
        }),
    }));
    const outcomes = await runFleet(targets, {
      parallel: Number(opts.parallel ?? 1),
      canary: Number(opts.canary ?? 0),
      jointCutover,
      keepWindow: window !== undefined,
      hold: { postponeCutover: opts.postponeCutover === true, flagFile: opts.postponeCutoverFlagFile, table },
      reporter,
    });
    for (const [i, o] of outcomes.entries()) {
      if (o.result) {
        await running[i].operation.report('success', o.result);
        printResult(o.result, opts.json ? (output as JsonReporter) : null);
      } else if (o.outcome === 'failed') {
        await running[i].operation.report('failure', undefined, o.error).catch((e) => reporter.warn(`could not write the report: ${(e as Error).message}`));
      }
      if (opts.json) (output as JsonReporter).emit({ event: 'target', target: o.label, outcome: o.outcome });
      else stdout.line(`target ${o.label}: ${o.outcome}`);
    }
    const failure = fleetFailure(outcomes, jointCutover);
    if (failure) throw failure;
  } finally {
    for (const m of members) await m.operation.close();
    for (const engine of engines) await engine.close().catch(ignoreFailure(CLOSING));
  }
}
