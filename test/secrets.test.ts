import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../src/core/engine/connect/secrets.js';
import { useDatabase, type Database } from './support/fixture.js';
import { mysqlDatabase } from './support/mysql.js';
import { postgresDatabase } from './support/pg.js';
import { waitFor } from './support/run.js';

const cli = fileURLToPath(new URL('../dist/bin/shadowcut.js', import.meta.url));

/** The built CLI with an environment of our choosing (SHADOWCUT_URL, MYSQL_PWD), nothing inherited that names a URL. */
function run(args: string[], env: Record<string, string> = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SHADOWCUT_URL|MYSQL_PWD|PGPASSWORD)$/.test(k)));
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...base, ...env } });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}`, stdout: r.stdout, stderr: r.stderr };
}

/** A password no output may show any piece of: a raw `@`, and text that survives any encoding. */
const PASSWORD = 'Zq7@Xw!k';
const PIECES = ['Zq7', 'Xw!k', 'Zq7%40', 'Xw%21k'];
const expectHidden = (text: string) => {
  for (const piece of PIECES) expect(text).not.toContain(piece);
};

/**
 * What ps shows for the CLI once it has replaced its command line (the first word is then
 * `shadowcut`, not node's path). Polled: on a busy machine node may take seconds to get there;
 * bounded, so a CLI that never does it fails the assertions that follow.
 */
async function shownOnceRunning(pid: number | undefined): Promise<string> {
  let shown = '';
  const renamed = async () => (shown = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ')).startsWith('shadowcut ');
  // Not failed here on a timeout: the assertions that follow say what was shown.
  await waitFor('the command line replaced', renamed, null, 30_000).catch(() => {});
  return shown;
}

describe('redactUrl: every spelling of a password', () => {
  it.each([
    ['postgres://u:Zq7@Xw!k@h:5432/db', 'postgres://u:***@h:5432/db'],
    ['postgres://u:Zq7%40Xw!k@h/db', 'postgres://u:***@h/db'],
    ['postgres://u@h/db?password=Zq7%40Xw!k&sslmode=require', 'postgres://u@h/db?password=***&sslmode=require'],
    ['mysql://u@h/db?pass=Zq7@Xw!k', 'mysql://u@h/db?pass=***'],
    ['mysql://u@h/db?pwd=Zq7&sslpassword=Xw!k', 'mysql://u@h/db?pwd=***&sslpassword=***'],
    ['mysql://u:Zq7/Xw!k@h/db', 'mysql://***'],
    ['postgres://u@h/db?options=-c%20search_path%3Dapp', 'postgres://u@h/db?options=-c%20search_path%3Dapp'],
  ])('%s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });
});

// The argument is the URL whole, whatever it holds: a raw space in the password (which the drivers
// accept, percent-encoding it) cut the URL in two where free text is searched, and ps showed the rest.
describe('ps', () => {
  it('hides every piece of a --url password with a raw space, as one argument or after --url=', async () => {
    const sockets: Socket[] = [];
    // A server that accepts and never answers: the run waits there while its cmdline is read.
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const urls = ['mysql', 'postgres'].map((scheme) => `${scheme}://u:Zq7 Xw!k@127.0.0.1:${port}/db`);
    const children = [
      ...urls.map((url) => spawn(process.execPath, [cli, 'plan', '--url', url, '--table', 't', '--alter', 'ADD COLUMN w int'], { stdio: 'ignore' })),
      ...urls.map((url) => spawn(process.execPath, [cli, 'plan', `--url=${url}`, '--table', 't', '--alter', 'ADD COLUMN w int'], { stdio: 'ignore' })),
    ];
    try {
      for (const child of children) {
        const shown = await shownOnceRunning(child.pid);
        expect(shown).toMatch(/^shadowcut plan --url[ =]\w+:\/\/u:\*\*\*@127\.0\.0\.1:\d+\/db --table t/);
        expectHidden(shown);
      }
    } finally {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.on('close', resolve)))));
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});

const ALTER = { mysql: 'ADD COLUMN w INT', postgres: 'ADD COLUMN w int' } as const;
/** An ALTER whose plan prints the safer stages, each a command line with the URL in it. */
const STAGED = { mysql: 'MODIFY v INT NOT NULL', postgres: 'ALTER COLUMN v SET NOT NULL' } as const;

describe.each([
  { name: 'MariaDB', kind: 'mysql' as const, open: mysqlDatabase },
  { name: 'PostgreSQL', kind: 'postgres' as const, open: postgresDatabase },
])('passwords on $name', ({ kind, open }) => {
  const db: Database = useDatabase(open, 'sec_t', 'shadowcut_history');
  let dir: string;
  /** The test database's URL for the role below, with its password spelled `how`. */
  const url = (how: 'raw' | 'encoded' | 'param' | 'none') => {
    const u = new URL(db.url);
    const base = `${u.protocol}//${u.host}${u.pathname}`;
    const at = base.replace('//', '//sc_secret@');
    if (how === 'raw') return base.replace('//', `//sc_secret:${PASSWORD}@`);
    if (how === 'encoded') return base.replace('//', `//sc_secret:${encodeURIComponent(PASSWORD)}@`);
    if (how === 'param') return `${at}?password=${encodeURIComponent(PASSWORD)}`;
    return at;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-secrets-'));
    await db.drop('sec_t', 'shadowcut_history');
    await db.query('CREATE TABLE sec_t (id INT PRIMARY KEY, v INT)');
    await db.query(`INSERT INTO sec_t SELECT g, g FROM (${db.series(20)}) s`);
    if (kind === 'mysql') {
      await db.query(`DROP USER IF EXISTS 'sc_secret'@'%'`);
      await db.query(`CREATE USER 'sc_secret'@'%' IDENTIFIED BY '${PASSWORD}'`);
      await db.query(`GRANT ALL PRIVILEGES ON *.* TO 'sc_secret'@'%'`);
    } else {
      // The private server trusts local connections: the password is sent nowhere, only its redaction is tested.
      await db.query('DROP ROLE IF EXISTS sc_secret');
      await db.query(`CREATE ROLE sc_secret LOGIN SUPERUSER PASSWORD '${PASSWORD}'`);
    }
  });
  afterAll(async () => {
    await db.drop('sec_t', 'shadowcut_history');
    if (kind === 'mysql') await db.query(`DROP USER IF EXISTS 'sc_secret'@'%'`);
    else await db.query('DROP ROLE IF EXISTS sc_secret');
    await rm(dir, { recursive: true, force: true });
  });

  it.each(['raw', 'encoded', 'param'] as const)('a password spelled %s is never printed nor stored', async (how) => {
    const common = ['--url', url(how), '--table', 'sec_t', '--alter', ALTER[kind]];
    for (const args of [
      ['plan', ...common],
      ['plan', ...common, '--json'],
      ['migrate', ...common],
      ['migrate', ...common, '--json', '--force-copy'],
    ]) {
      const r = run(args);
      expect(r.code).toBe(0);
      expectHidden(r.out);
    }
    expect(run(['plan', '--url', url(how), '--table', 'sec_t', '--alter', STAGED[kind]]).stdout).toMatch(
      /--url '?(mysql|postgres):\/\/sc_secret(:\*\*\*)?@[^ ]*(\?password=\*\*\*)?'? --table/,
    );
    const stored = await db.query(`SELECT entry FROM shadowcut_history`);
    expect(stored.length).toBeGreaterThan(0);
    expectHidden(JSON.stringify(stored));
    // A refusal quotes no password either: a database that does not exist.
    const wrong = run(['plan', '--url', url(how).replace(/\/(\w+)(\?|$)/, '/no_such_db$2'), '--table', 'sec_t', '--alter', ALTER[kind]]);
    expect(wrong.code).not.toBe(0);
    expectHidden(wrong.out);
  });

  it('hides a password given in --url from ps once it runs', async () => {
    const child = spawn(
      process.execPath,
      [cli, 'backfill', '--url', url('raw'), '--table', 'sec_t', '--set', 'v = v', '--execute', '--max-rows-per-sec', '1', '--batch-rows', '1'],
      {
        stdio: 'ignore',
      },
    );
    try {
      const shown = await shownOnceRunning(child.pid);
      expect(shown).toMatch(/^shadowcut backfill --url \S+:\/\/sc_secret:\*\*\*@/);
      expectHidden(shown);
    } finally {
      child.kill('SIGINT');
      await new Promise((resolve) => child.on('close', resolve));
      await db.query(`DROP TABLE IF EXISTS sec_t__state, sec_t__hb`);
    }
  });

  it('takes the URL from --url-file (private files only) or SHADOWCUT_URL', async () => {
    const file = path.join(dir, `${kind}.url`);
    await writeFile(file, `${url('encoded')}\n`);
    await chmod(file, 0o644);
    const open = run(['history', '--url-file', file, '--table', 'sec_t']);
    expect(open.code).not.toBe(0);
    expect(open.stderr).toBe(`shadowcut: --url-file ${file} can be read by other users (mode 644); make it private first: chmod 600 ${file}\n`);
    await chmod(file, 0o600);
    const fromFile = run(['plan', '--url-file', file, '--table', 'sec_t', '--alter', ALTER[kind]]);
    expect(fromFile.code).toBe(0);
    expectHidden(fromFile.out);
    const fromEnv = run(['plan', '--table', 'sec_t', '--alter', ALTER[kind]], { SHADOWCUT_URL: url('raw') });
    expect(fromEnv.code).toBe(0);
    expectHidden(fromEnv.out);
    const none = run(['plan', '--table', 'sec_t', '--alter', ALTER[kind]]);
    expect(none.stderr).toBe('shadowcut: no database URL: give --url, --url-file or set SHADOWCUT_URL\n');
    expect(run(['plan', '--url', url('none'), '--url-file', file, '--table', 'sec_t', '--alter', ALTER[kind]]).stderr).toBe(
      'shadowcut: give the database URL once: --url or --url-file, not both\n',
    );
  });

  it.runIf(kind === 'mysql')("takes MySQL's password from MYSQL_PWD or the option file ?defaults-file= names, and is refused without", async () => {
    expect(run(['history', '--url', url('none'), '--table', 'sec_t']).stderr).toMatch(/^shadowcut: cannot connect to mysql:\/\/sc_secret@.*Access denied/);
    expect(run(['history', '--url', url('none'), '--table', 'sec_t'], { MYSQL_PWD: PASSWORD }).code).toBe(0);
    const options = path.join(dir, 'my.cnf');
    await writeFile(options, `[mysql]\npassword=wrong\n[client]\nuser = ignored\npassword = "${PASSWORD}"\n`, { mode: 0o600 });
    const viaFile = run(['history', '--url', `${url('none')}?defaults-file=${encodeURIComponent(options)}`, '--table', 'sec_t']);
    expect(viaFile.stderr).toBe('');
    expect(viaFile.code).toBe(0);
  });
});

/**
 * The private PostgreSQL server trusts local connections, so a password is never asked for. Here
 * one role is made to need it (a scram-sha-256 line first in pg_hba.conf, put back afterwards), to
 * prove each way of giving it without --url: PGPASSWORD, a password file, --url-file, SHADOWCUT_URL.
 */
describe('PostgreSQL: the password comes from the environment or a file', () => {
  const db = useDatabase(postgresDatabase);
  let dir: string;
  let hbaFile: string;
  let hba: string;
  const base = () => {
    const u = new URL(db.url);
    return {
      host: u.hostname,
      port: u.port,
      url: `postgres://sc_pw@${u.host}${u.pathname}`,
      withPassword: `postgres://sc_pw:${encodeURIComponent(PASSWORD)}@${u.host}${u.pathname}`,
    };
  };
  const history = (args: string[], env: Record<string, string> = {}) => run(['history', ...args, '--table', 'pg_class'], env);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-pgpass-'));
    await db.query('DROP ROLE IF EXISTS sc_pw');
    await db.query(`CREATE ROLE sc_pw LOGIN PASSWORD '${PASSWORD}'`);
    hbaFile = String((await db.query(`SELECT current_setting('hba_file')`))[0][0]);
    hba = await readFile(hbaFile, 'utf8');
    await writeFile(hbaFile, `host all sc_pw 127.0.0.1/32 scram-sha-256\nhost all sc_pw ::1/128 scram-sha-256\n${hba}`);
    await db.query('SELECT pg_reload_conf()');
  });
  afterAll(async () => {
    if (hba !== undefined) {
      await writeFile(hbaFile, hba);
      await db.query('SELECT pg_reload_conf()');
    }
    await db.query('DROP ROLE IF EXISTS sc_pw');
    await rm(dir, { recursive: true, force: true });
  });

  it('is refused without a password, and connects with PGPASSWORD, a private ~/.pgpass, --url-file or SHADOWCUT_URL', async () => {
    const { host, port, url, withPassword } = base();
    const without = history(['--url', url]);
    expect(without.code).not.toBe(0);
    expect(without.stderr).toMatch(/^shadowcut: cannot connect to PostgreSQL: .*password/);
    expect(history(['--url', url], { PGPASSWORD: PASSWORD }).code).toBe(0);

    const home = path.join(dir, 'home');
    await mkdir(home);
    const pgpass = path.join(home, '.pgpass');
    await writeFile(pgpass, `${host}:${port}:*:sc_pw:${PASSWORD.replace(/([:\\])/g, '\\$1')}\n`, { mode: 0o600 });
    const viaPgpass = history(['--url', url], { HOME: home });
    expect(viaPgpass.code).toBe(0);
    // node-postgres announces that it will read ~/.pgpass itself no more from pg 9 on.
    expect(viaPgpass.stderr).toMatch(/^$|DeprecationWarning: pgpass support is deprecated/);
    // libpq's rule, which node-postgres follows: a password file others can read is not used.
    await chmod(pgpass, 0o644);
    expect(history(['--url', url], { HOME: home }).code).not.toBe(0);

    const file = path.join(dir, 'pg.url');
    await writeFile(file, withPassword, { mode: 0o600 });
    expect(history(['--url-file', file]).code).toBe(0);
    expect(history([], { SHADOWCUT_URL: withPassword }).code).toBe(0);
  });
});
