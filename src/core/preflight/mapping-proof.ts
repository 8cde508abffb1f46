import { UserError } from '../engine/errors.js';
import type { Key } from '../engine/contract-values.js';
import type { MigrationPreflight } from '../engine/ports/preflight.js';
import type { MappingProof } from '../run/proofs.js';

export type { MappingProof };

/** Rows the server puts through the user's ALTER for each proof: a few thousand, spread over the keys. */
export const PROOF_ROWS = 2000;

/**
 * The copy's column mapping comes from reading the ALTER, and the checksum compares through the
 * same mapping, so neither can see a mapping that is wrong (docs/invariants.md, invariant 8). The server is
 * the judge instead: sampled rows go through the user's own ALTER on a probe table and through the
 * copy's mapping on another, and every column of the result must agree.
 */
export async function proveMapping(migration: MigrationPreflight, anchors: (Key | null)[] | null): Promise<MappingProof> {
  const result = await migration.compareWithAlter(anchors, PROOF_ROWS);
  if (result.unmatched > 0) {
    throw new UserError(
      `the copy does not reproduce the ALTER's rows: ${result.unmatched} of ${result.rows} sampled rows are on one side only; nothing was changed`,
    );
  }
  const wrong = result.columns.find((c) => c.differing > 0 && !c.generatedByServer);
  if (wrong) {
    const e = wrong.example;
    const example = e ? ` (key ${e.key}: the ALTER gives ${showValue(e.alter)}, the copy ${showValue(e.copy)})` : '';
    throw new UserError(
      `the copy would not give what the ALTER gives for column ${wrong.name} in ${wrong.differing} of ${result.rows} sampled rows${example}; ` +
        'refusing rather than copying it wrong: nothing was changed (run the change as a blocking ALTER, and please report the ALTER)',
    );
  }
  return {
    rows: result.rows,
    columns: result.columns.length,
    notCompared: result.columns.filter((c) => c.differing > 0).map((c) => c.name),
  };
}

/** A sampled value for a message: NULL, or quoted and cut short. */
export function showValue(value: string | null): string {
  if (value === null) return 'NULL';
  return value.length > 40 ? `'${value.slice(0, 40)}...'` : `'${value}'`;
}

/**
 * A bounded, uniform sample of the keys the copy stepped over (reservoir sampling): anchors for the
 * proof at verification time, spread over the whole key range whatever its size.
 */
export class KeySample {
  private readonly keys: Key[] = [];
  private seen = 0;

  constructor(private readonly size = 16) {}

  offer(key: Key | null): void {
    if (key === null) return;
    this.seen++;
    if (this.keys.length < this.size) this.keys.push(key);
    else {
      const slot = Math.floor(Math.random() * this.seen);
      if (slot < this.size) this.keys[slot] = key;
    }
  }

  /**
   * The sampled keys, after the table's start (null): every key is the end of a chunk, so rows are
   * taken after each, and the first chunk (a table's only one, when it ends on a boundary) would
   * otherwise never be sampled. Null when nothing was sampled (the engine then spreads its own sample).
   */
  anchors(): (Key | null)[] | null {
    return this.keys.length ? [null, ...this.keys] : null;
  }
}
