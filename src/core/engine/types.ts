/**
 * The contract between the engine-neutral runner and an engine (MySQL/MariaDB, PostgreSQL).
 * The runner owns the phases, the ordering of copy and apply, retries and progress;
 * an engine owns SQL, locks and the change stream, and knows nothing of phases.
 *
 * The contract is cut into ports, one per concern (ports/, listed in README.md), so that core code
 * can name the one it uses; `Engine` and `Migration` are the whole of them, and each engine
 * implements each as one object. This file gathers them for the code that wants the whole.
 */
import type { EngineBackfill } from './ports/backfill.js';
import type { EngineComparison } from './ports/comparison.js';
import type { EngineContract } from './ports/contract.js';
import type { EngineHelperTables } from './ports/helper-table.js';
import type { EngineInPlace } from './ports/in-place.js';
import type { EngineMigrations } from './ports/migrations.js';
import type { EnginePlacement } from './ports/placement.js';
import type { EngineRestore } from './ports/restore.js';
import type { EngineServer } from './ports/server.js';
import type { EngineSizing } from './ports/sizing.js';

export type { CheckResult, Key, KeyRange, KeyValue, Position, RangeDigest, Session } from './contract-values.js';
export type { ChangeSink, ChangeSource, ChangeStream, Reference } from './ports/change-source.js';
export type { Migration, Plan } from './migration.js';
export type { ClaimSession } from './ports/server.js';
export type { DeferIndexes, MigrationRequest } from './ports/migrations.js';
export type { ProbeComparison } from './ports/preflight.js';
export type { CheckedCopy } from './ports/copy.js';
export type { ConsistentView, SnapshotView } from './ports/verification.js';
export type { CatchUp, CutoverOptions, CutoverResult, LockProbe, OldSnapshot } from './ports/cutover.js';
export type { ProbeOptions, Probes } from './ports/throttle.js';
export type { TablePlacement } from './ports/placement.js';

/** What is the same for every table on one server: connections, names, the run's claim, leftovers, and each command's own part. */
export interface Engine
  extends
    EngineServer,
    EngineMigrations,
    EngineInPlace,
    EngineSizing,
    EnginePlacement,
    EngineBackfill,
    EngineComparison,
    EngineContract,
    EngineRestore,
    EngineHelperTables {}
