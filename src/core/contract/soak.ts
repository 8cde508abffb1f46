import { formatDuration } from '../run/duration.js';
import type { HistoryEntry } from '../engine/ports/history.js';
import { mentions } from '../engine/contract/mentions.js';
import type { ContractCheck, DropTarget } from '../engine/ports/contract.js';

/** One week: the practice's soak between switching to the new shape and dropping the old one. */
export const DEFAULT_MIN_SOAK_MS = 7 * 86_400_000;

/** What the contract's history entry keeps of the soak. */
export interface SoakRecord {
  minSoakMs: number;
  /** The stage the contract retires, as the history names it; null when the history has none. */
  since: { command: string; stage: string; finishedAt: string } | null;
  /** When the soak ends (or ended); null without such a stage. */
  endsAt: string | null;
  /** `--min-soak 0` let the contract go ahead inside the soak. */
  overridden: boolean;
}

/**
 * The stage a contract retires: the latest successful stage of the table that changed what is
 * dropped or moved its users off it. Commands that change data or shape count (migrate, backfill,
 * restore) and verify, the last stage before the switch: the first verify after the latest change,
 * since a verify changes nothing and one run again later (as a last look before the contract) is not
 * a switch, and must not start the soak over. Plan changes nothing and a contract is what is being
 * judged. Which of them count depends on what goes:
 * - a column: those whose statement (the ALTER, the SET and WHERE, the expectation) names the
 *   column as a word (`backfill --set "email_addr = email"` retires `email`), and a restore of it;
 * - an index: every migrate of the table (where a replacement index is made) and those naming it;
 * - the table: every one of them on the table.
 */
export function retiringStage(entries: HistoryEntry[], drop: DropTarget): HistoryEntry | null {
  const counts = (e: HistoryEntry) => {
    if (e.outcome !== 'success' || !COUNTED.has(e.command)) return false;
    if (drop.kind === 'table') return true;
    if (drop.kind === 'index') return e.command === 'migrate' || mentions(e.stage, drop.index);
    return drop.columns.some((c) => mentions(e.stage, c) || restored(e).some((r) => r.toLowerCase() === c.toLowerCase()));
  };
  const at = (e: HistoryEntry) => Date.parse(e.finishedAt);
  const found = entries.filter(counts).sort((a, b) => at(a) - at(b));
  const change = found.filter((e) => e.command !== 'verify').pop();
  const verified = found.find((e) => e.command === 'verify' && (!change || at(e) >= at(change)));
  return verified ?? change ?? null;
}

const COUNTED = new Set(['migrate', 'backfill', 'verify', 'restore']);

/** The columns a restore put back (its stage names the backup, its detail the columns). */
function restored(e: HistoryEntry): string[] {
  const columns = e.command === 'restore' ? (e.detail as { columns?: { name: string }[] }).columns : undefined;
  return (columns ?? []).map((c) => c.name);
}

/** The soak as a contract check: failed inside it unless `minSoakMs` is 0, which is then recorded. */
export function soakCheck(
  table: string,
  entries: HistoryEntry[],
  drop: DropTarget,
  minSoakMs: number,
  now: number,
): { check: ContractCheck; record: SoakRecord } {
  const stage = retiringStage(entries, drop);
  const name = 'soak';
  if (!stage) {
    return {
      check: {
        name,
        ok: true,
        message: `the history of ${table} has no migrate, backfill, verify or restore of what goes: shadowcut never changed it, no soak to wait for`,
      },
      record: { minSoakMs, since: null, endsAt: null, overridden: false },
    };
  }
  const finished = Date.parse(stage.finishedAt);
  const endsAt = new Date(finished + minSoakMs).toISOString();
  const what = `${stage.command} "${stage.stage}" finished ${stage.finishedAt} (${formatDuration(now - finished)} ago)`;
  const record = { minSoakMs, since: { command: stage.command, stage: stage.stage, finishedAt: stage.finishedAt }, endsAt, overridden: false };
  // 0 is the override: said and recorded whenever the default soak would have refused.
  if (minSoakMs === 0 && now - finished < DEFAULT_MIN_SOAK_MS) {
    const week = new Date(finished + DEFAULT_MIN_SOAK_MS).toISOString();
    return {
      check: { name, ok: true, message: `overridden by --min-soak 0: ${what}; the default soak would end ${week}` },
      record: { ...record, endsAt: week, overridden: true },
    };
  }
  if (now - finished >= minSoakMs) {
    return { check: { name, ok: true, message: `${what}: the ${formatDuration(minSoakMs)} soak is over` }, record };
  }
  return {
    check: {
      name,
      ok: false,
      message: `inside the soak: ${what}, and --min-soak ${formatDuration(minSoakMs)} ends ${endsAt}; contract then, or give --min-soak 0 to go ahead now (recorded in the history)`,
    },
    record,
  };
}
