import { Command } from 'commander';
import { timeline } from '../core/history/markdown.js';
import { createEngine } from '../engines/index.js';

export function historyCommand(): Command {
  return new Command('history')
    .description("print a table's timeline: every plan, migrate, backfill, verify and contract stage it has had")
    .requiredOption('--url <url>', 'database URL, as for migrate')
    .requiredOption('--table <name>', 'the table')
    .option('--json', 'one JSON object per stage, one per line', false)
    .action(async (opts) => {
      const engine = await createEngine(opts.url);
      try {
        const table = engine.qualify(opts.table);
        const entries = await engine.history.list(table);
        if (opts.json) process.stdout.write(entries.map((e) => JSON.stringify(e) + '\n').join(''));
        else process.stdout.write(entries.length ? timeline(table, entries) : `${table}: no history recorded\n`);
      } finally {
        await engine.close().catch(() => {});
      }
    });
}
