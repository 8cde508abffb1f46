import { UserError } from '../engine/errors.js';
import type { AlterPart, InPlaceStep } from '../engine/ports/in-place.js';
import { classifyMember } from '../in-place/set-member.js';
import type { CheckResult, Engine, MigrationRequest } from '../engine/types.js';
import { bytes, duration } from '../report/units.js';
import { redactUrl } from '../engine/connect/secrets.js';
import { expandContract, type Stage } from './stages.js';
import type { DiskSpace, TableSize } from '../engine/ports/sizing.js';
import { defaultSampleRows, scale, timeSample, UNTIMED_MS, type CopyPacing, type Estimate } from './estimate.js';
import { describeCapture } from '../engine/capture/capture-choice.js';
import type { CaptureChoice } from '../engine/ports/capture.js';

export interface PlanOptions {
  /** migrate's, so the plan's lock durations are the ones a run would have. */
  lockTimeoutMs: number;
  cutoverAttempts: number;
  /** Rows copied into a probe to time the run's phases; by default a bounded share of the table (estimate.ts). */
  sampleRows?: number;
  /** migrate's --chunk-time-ms: the sample is copied in chunks of the run's size. */
  chunkTimeMs?: number;
  /**
   * `performance.now()` when the command started (0: the process's start). The run pays the same
   * start-up (the process, its connections, the table's inspection) before its preflight, so the
   * fixed part of the estimate counts from there.
   */
  startedAt?: number;
  /** migrate's --max-rows-per-sec and --nice-ratio, which the copy's estimate counts. */
  pacing?: CopyPacing;
  /** Plan the copy even where the change could be made in place (migrate --force-copy). */
  forceCopy?: boolean;
}

export interface PlanDetail {
  table: string;
  alter: string;
  path: 'in-place' | 'copy';
  pathReason: string;
  parts: AlterPart[];
  /** The in-place statements, in order (empty for the copy). */
  steps: InPlaceStep[];
  size: TableSize;
  /** The copy only: shadow (data + indexes) plus about as much binlog/WAL; null in place. */
  diskNeededBytes: number | null;
  disk: DiskSpace | null;
  /** The copy only: the run's phases timed on a sample, and what they scale to. */
  estimate: Estimate | null;
  locks: { step: string; lock: string }[];
  /** The copy only: how changes would be followed, and why. */
  capture: CaptureChoice | null;
  /** For each change that breaks running code: the expand/contract stages instead. */
  stages: { change: string; stages: Stage[] }[];
}

/** What `plan` returns, in the shape every expand/contract command returns for the history. */
export interface PlanResult {
  outcome: 'planned' | 'refused';
  rowsTouched: number;
  checks: CheckResult[];
  summary: string[];
  detail: PlanDetail;
}

/**
 * Everything `migrate` would do, before anything is done: the parts' classes (the server asked on
 * probes), the path, and for the copy the size, disk, a timed sample, the checks that would refuse
 * it. Only probes are created, and each is dropped (or rolled back) whatever happens.
 */
export async function planAlter(engine: Engine, request: MigrationRequest, options: PlanOptions): Promise<PlanResult> {
  const classified = await classifyMember(engine, request);
  const path = classified.path === 'in-place' && !options.forceCopy ? 'in-place' : 'copy';
  const size = await engine.tableSize(request.table);
  const detail: PlanDetail = {
    table: engine.qualify(request.table),
    alter: request.alter,
    path,
    pathReason: path === classified.path ? classified.why : 'in place was possible, but --force-copy',
    parts: classified.parts,
    steps: path === 'in-place' ? classified.steps : [],
    size,
    diskNeededBytes: null,
    disk: null,
    estimate: null,
    locks: [],
    capture: null,
    stages: [],
  };
  let checks: CheckResult[] = [];
  if (path === 'in-place') {
    detail.locks = classified.parts.map((p) => ({ step: p.clause, lock: p.locks }));
  } else {
    checks = await planCopy(engine, request, options, detail);
  }
  // Commands end up in terminals, reports and the history.
  const context = { url: redactUrl(request.url), table: request.table };
  for (const part of classified.parts) {
    for (const change of part.breaking) detail.stages.push({ change: describe(change), stages: expandContract(change, { ...context, clause: part.clause }) });
  }
  const refused = checks.some((c) => !c.ok);
  return { outcome: refused ? 'refused' : 'planned', rowsTouched: 0, checks, summary: summarize(detail, checks), detail };
}

async function planCopy(engine: Engine, request: MigrationRequest, options: PlanOptions, detail: PlanDetail): Promise<CheckResult[]> {
  const { size } = detail;
  detail.diskNeededBytes = size.dataBytes + size.indexBytes + size.dataBytes;
  detail.disk = await engine.diskSpace();
  detail.locks = [
    {
      step: 'copy, catch-up and verification',
      lock: 'none on the table: keyset chunks read committed rows; the checksum view pauses writers for at most --lock-timeout-ms',
    },
    {
      step: 'cut-over',
      lock: `writes blocked for at most ${options.lockTimeoutMs} ms per attempt (--lock-timeout-ms), up to ${options.cutoverAttempts} attempts with backoff`,
    },
  ];
  const preflightStart = performance.now();
  let migration;
  try {
    migration = await engine.prepare(request);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return [{ name: 'copy', ok: false, message: error.message }];
  }
  detail.capture = migration.plan.capture ?? null;
  const checks = await migration.checks({ resuming: false });
  const preflightMs = performance.now() - (options.startedAt ?? preflightStart);
  const probe = await migration.openSampleProbe();
  let sample;
  try {
    sample = await timeSample(probe, options.sampleRows ?? defaultSampleRows(size), options.chunkTimeMs ?? engine.chunkTimeMs);
  } catch (error) {
    // Rows the new schema cannot take: the plan says so as a refusal instead of failing whole.
    if (!(error instanceof UserError)) throw error;
    return [...checks, { name: 'copy sample', ok: false, message: error.message }];
  } finally {
    await probe.close();
  }
  detail.estimate = scale(sample, size, preflightMs, options.pacing);
  return checks;
}

function describe(change: AlterPart['breaking'][number]): string {
  switch (change.kind) {
    case 'rename-column':
      return `renames column ${change.from} to ${change.to}`;
    case 'type-change':
      return `changes the type of ${change.column} from ${change.from} to ${change.to}`;
    case 'drop-column':
      return `drops column ${change.column}`;
    case 'not-null':
      return `makes ${change.column} NOT NULL without a default: code that does not write it fails`;
  }
}

function summarize(d: PlanDetail, checks: CheckResult[]): string[] {
  const out = [`table: ${d.table}`, `alter: ${d.alter}`, 'parts:'];
  for (const p of d.parts) out.push(`  ${p.class.padEnd(14)} ${p.clause}: ${p.reason}`);
  out.push(`path: ${d.path} (${d.pathReason})`);
  out.push(`size: about ${d.size.rows} rows, ${bytes(d.size.dataBytes)} of data and ${bytes(d.size.indexBytes)} of indexes`);
  if (d.path === 'in-place') {
    out.push('statements:', ...d.steps.flatMap((s) => s.sql.map((sql) => `  ${sql}`)));
    const reads = d.parts.some((p) => p.class !== 'instant');
    out.push(
      `duration: ${reads ? 'milliseconds of locks; the validations and index builds read the whole table once while writers go on' : 'milliseconds: no row is read or written'}`,
    );
    out.push('disk: no copy of the table' + (d.parts.some((p) => p.class === 'online-index') ? '; room for the new index' : ''));
  } else {
    const disk =
      d.disk && 'path' in d.disk ? `${bytes(d.disk.availableBytes)} free under ${d.disk.path}` : `free space unknown: ${d.disk ? d.disk.unknown : ''}`;
    if (d.capture) out.push(describeCapture(d.capture));
    out.push(`disk: about ${bytes(d.diskNeededBytes ?? 0)} needed (the shadow, plus about as much binlog/WAL); ${disk}`);
    if (d.estimate) out.push(...describeEstimate(d.estimate));
    out.push('checks:', ...checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.message}`));
  }
  out.push('locks:', ...d.locks.map((l) => `  ${l.step}: ${l.lock}`));
  for (const s of d.stages) {
    out.push(`this ${s.change}; code still running against the old schema breaks. Expand/contract instead:`);
    s.stages.forEach((stage, i) => out.push(`  ${i + 1}) ${stage.what}${stage.command ? ':' : ''}`, ...(stage.command ? [`       ${stage.command}`] : [])));
  }
  return out;
}

function describeEstimate(e: Estimate): string[] {
  const s = e.sample;
  const built = s.indexes.length ? `index build ${duration(e.indexMs)} (${s.indexes.join(', ')}), ` : `after the copy ${duration(e.indexMs)}, `;
  return [
    `duration: about ${duration(e.totalMs)}: copy ${duration(e.copyMs)}, ${built}verification ${duration(e.verifyMs)}, ` +
      `preflight, setup and cut-over ${duration(e.fixedMs)}; throttling and writes add to it`,
    `  timed on a probe shaped like the shadow: ${s.rows} rows copied in ${s.chunks} chunk(s) of the run's size in ${duration(s.copyMs)}` +
      (s.indexes.length ? `, ${s.indexes.length} index(es) built after them in ${duration(s.indexMs)}` : '') +
      `, both sides digested as the verification does in ${duration(s.verifyMs)}; ` +
      `start-up and preflight checks as this plan ran them, plus ${duration(UNTIMED_MS)} for the mapping proofs, setup, cut-over and cleanup`,
  ];
}
