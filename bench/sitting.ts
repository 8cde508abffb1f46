// bench/fixed-rate.sh's view of durability.ts, on the servers its environment names
// (SHADOWCUT_MYSQL_URL and SHADOWCUT_MYSQL_REPLICA_URL, or SHADOWCUT_PG_URL and SHADOWCUT_PG_STANDBY_URL):
//   node dist/bench/sitting.js check mysql|postgres durable|relaxed <hint>
//       the servers' settings and the disk's figures, as lines; exit 1 with one line if they are not as asked
//   node dist/bench/sitting.js counters mysql|postgres         where the primary's logs stand, as JSON
//   node dist/bench/sitting.js delta mysql|postgres <counters>  what it wrote since, as JSON
//   node dist/bench/sitting.js text <delta> [<reference delta>]  as words, each kind's ratio to the reference's
import { bytesBetween, bytesText, DurabilityMismatch, readCounters, sittingLines, takeSitting, type BytesWritten, type ServerToRead } from './durability.js';

function servers(engine: 'mysql' | 'postgres'): ServerToRead[] {
  const env = process.env;
  const named: Array<[string, string | undefined]> =
    engine === 'mysql'
      ? [
          ['MariaDB primary', env.SHADOWCUT_MYSQL_URL],
          ['MariaDB replica', env.SHADOWCUT_MYSQL_REPLICA_URL],
        ]
      : [
          ['PostgreSQL primary', env.SHADOWCUT_PG_URL],
          ['PostgreSQL standby', env.SHADOWCUT_PG_STANDBY_URL],
        ];
  return named.filter((n): n is [string, string] => Boolean(n[1])).map(([label, url]) => ({ label, engine, url }));
}

async function main(argv: string[]): Promise<void> {
  const [command, engine, ...rest] = argv;
  if (command === 'text') {
    const [delta, reference] = [engine, ...rest].map((j) => JSON.parse(j) as BytesWritten);
    process.stdout.write(bytesText(delta, reference) + '\n');
    return;
  }
  if (engine !== 'mysql' && engine !== 'postgres') throw new Error('usage: sitting.js check|counters|delta mysql|postgres ... | text <delta> [<reference>]');
  const urls = servers(engine);
  if (urls.length === 0) throw new Error(`no ${engine} server in the environment`);
  if (command === 'check') {
    const [asked, hint] = rest;
    if (asked !== 'durable' && asked !== 'relaxed') throw new Error('check takes durable or relaxed');
    process.stdout.write(sittingLines(await takeSitting(urls, asked, hint ?? '')).join('\n') + '\n');
  } else if (command === 'counters') {
    process.stdout.write(JSON.stringify(await readCounters(engine, [urls[0].url])) + '\n');
  } else if (command === 'delta') {
    const before = JSON.parse(rest[0]) as BytesWritten;
    process.stdout.write(JSON.stringify(bytesBetween(before, await readCounters(engine, [urls[0].url]))) + '\n');
  } else {
    throw new Error(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  // A refusal is the answer, in one line; anything else is the script's own failure, also one line.
  process.stderr.write(`${e instanceof DurabilityMismatch ? 'bench' : 'sitting'}: ${(e as Error).message}\n`);
  process.exit(1);
});
