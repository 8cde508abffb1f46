import { Command } from 'commander';
import { timeline } from '../core/history/markdown.js';
import { createEngine } from '../engines/index.js';
import { addUrlOptions } from './connection.js';
import { CLOSING, ignoreFailure } from '../core/engine/errors.js';
import { historyOf } from '../core/history/store.js';
import { stdout } from './output.js';

export function historyCommand(): Command {
  return addUrlOptions(
    new Command('history').description("print a table's timeline: every plan, migrate, backfill, verify, contract and restore stage it has had"),
    {
      required: true,
    },
  )
    .requiredOption('--table <name>', 'the table')
    .option('--json', 'one JSON object per stage, one per line', false)
    .action(async (opts) => {
      const engine = await createEngine(opts.url);
      try {
        const table = engine.qualify(opts.table);
        const entries = await historyOf(engine).list(table);
        if (opts.json) for (const e of entries) stdout.json(e);
        else stdout.lines(entries.length ? timeline(table, entries) : [`${table}: no history recorded`]);
      } finally {
        await engine.close().catch(ignoreFailure(CLOSING));
      }
    });
}
