import { Command } from 'commander';
import { RunClaim } from '../core/run/claim.js';
import { createEngine } from '../engines/index.js';
import { addUrlOptions } from './connection.js';
import { CLOSING, ignoreFailure } from '../core/engine/errors.js';
import { CheckpointRun, openCheckpoint } from '../core/engine/state/checkpoint.js';
import { stderr, stdout } from './output.js';

export function cleanupCommand(): Command {
  return addUrlOptions(
    new Command('cleanup').description(
      'remove the helper objects a dead run left behind (capture triggers first, then the shadow table, change log, sentry, stream objects)',
    ),
    {
      required: true,
    },
  )
    .requiredOption('--table <name>', 'the table the run was changing')
    .option('--drop-old', "also drop the kept original (the interrupted run's old table, else <name>__old)", false)
    .action(async (opts) => {
      const engine = await createEngine(opts.url);
      try {
        // A live run removes its own objects when it ends; dropping them under it would break it.
        const claim = await RunClaim.take(engine, opts.table);
        try {
          // The dead run's checkpoint, refused if it is not this table's or was put back after its run (openCheckpoint).
          const text = await engine.loadCheckpoint(opts.table);
          const checkpoint = text === null ? null : openCheckpoint(text, engine, opts.table);
          const dropped = await engine.cleanupLeftovers(opts.table, { dropOld: opts.dropOld });
          // Removed with the rest: that run has ended, and a copy of its checkpoint put back is refused.
          if (checkpoint) CheckpointRun.continuing(checkpoint).ended({ warn: (m) => stderr.line(`shadowcut: warning: ${m}`) });
          stdout.line(dropped.length ? `removed: ${dropped.join(', ')}` : 'nothing to remove');
        } finally {
          await claim.release();
        }
      } finally {
        await engine.close().catch(ignoreFailure(CLOSING));
      }
    });
}
