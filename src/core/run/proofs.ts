/**
 * What the proofs made before and during a run found: the run's result and its report carry them,
 * so they live beside the result (config.ts) rather than with the commands that make them.
 */

/** The column mapping proven by the server's own ALTER on sampled rows (preflight/mapping-proof.ts). */
export interface MappingProof {
  rows: number;
  columns: number;
  /** Columns whose values the server draws per row (sequences, UUIDs...): equal on neither side by design. */
  notCompared: string[];
}

/** Whether the old table could follow the new one back, and why not (preflight/revert-verdict.ts). */
export interface RevertVerdict {
  revertible: boolean;
  reasons: string[];
  /** Sampled rows the server took through the change and back; 0 when a reason was found without them. */
  provenRows: number;
}
