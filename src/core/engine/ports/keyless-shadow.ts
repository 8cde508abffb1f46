/**
 * A shadow the copy fills without its key (PostgreSQL's bare heap, built keyless because a sorted
 * build afterwards is cheaper than maintaining the key row by row). Until the key is there no change
 * can be applied to it, so the applier holds them, bounded by its buffer; the engine builds the key
 * first in its `afterCopy`, and the applier has it built early when its buffer fills.
 */
export interface KeylessShadow {
  /** The shadow has no key yet: changes wait. */
  readonly holding: boolean;
  /** Builds the shadow's key if it has none (once). */
  build(): Promise<void>;
}
