/**
 * The quick-start demo: private servers, a 300,000-row table under a write load, an online ALTER
 * with live progress, parity checked against a mirror table that took the same writes, servers down.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { exitOnServersUnavailable, ServersUnavailable } from './servers-error.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const stateDir = process.env.SHADOWCUT_SERVERS_DIR ?? `${root}.servers-demo`;
const env = { ...process.env, SHADOWCUT_SERVERS_DIR: stateDir };
const ROWS = Number(process.env.DEMO_ROWS ?? 300_000);
const ALTER = 'ADD COLUMN note VARCHAR(200) NULL, MODIFY qty BIGINT NOT NULL, ADD INDEX (created_at)';

const say = (text: string) => process.stdout.write(`\n== ${text}\n`);

async function main() {
  say('starting private MariaDB and PostgreSQL servers (scripts/servers.sh up)');
  try {
    execFileSync('bash', [`${root}scripts/servers.sh`, 'up'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (error) {
    throw new ServersUnavailable(`scripts/servers.sh up exited ${(error as { status?: number }).status ?? 'abnormally'}`);
  }
  const url = JSON.parse(readFileSync(`${stateDir}/servers.json`, 'utf8')).mysqlUrl as string;
  const db = mysql.createPool({ uri: url, connectionLimit: 6, multipleStatements: true });
  try {
    say(`creating demo.orders with ${ROWS.toLocaleString()} rows, and a mirror of it`);
    await db.query(`DROP TABLE IF EXISTS orders, orders_mirror, orders__new, orders__old;
      CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, qty INT NOT NULL,
        price DECIMAL(12,2) NOT NULL, created_at DATETIME(6) NOT NULL, KEY (customer_id)) ENGINE=InnoDB;
      INSERT INTO orders SELECT seq, seq % 1000, seq % 10, seq / 100, '2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_${ROWS};
      CREATE TABLE orders_mirror LIKE orders; INSERT INTO orders_mirror SELECT * FROM orders;`);

    say('starting a write load: every transaction writes orders and orders_mirror alike');
    let running = true;
    let writes = 0;
    let errors = 0;
    const load = [0, 1].map(async (w) => {
      const conn = await db.getConnection();
      for (let i = 0; running; i++) {
        const id = 1 + w + 2 * Math.floor(Math.random() * (ROWS / 2));
        const sql =
          i % 3 === 0
            ? `INSERT INTO {t} (id, customer_id, qty, price, created_at) VALUES (${ROWS + 10 + w + 2 * i}, ${w}, 1, 9.99, '2025-01-01 00:00:00.000001')`
            : `UPDATE {t} SET qty = qty + 1 WHERE id = ${id}`;
        try {
          await conn.query('BEGIN');
          for (const t of ['orders', 'orders_mirror']) await conn.query(sql.replace('{t}', t));
          await conn.query('COMMIT');
          writes++;
        } catch {
          errors++;
          await conn.query('ROLLBACK').catch(() => {});
        }
      }
      conn.release();
    });

    say(`shadowcut migrate --table orders --alter "${ALTER}" --execute`);
    const cli = fileURLToPath(new URL('../bin/shadowcut.js', import.meta.url));
    const code = await new Promise<number | null>((resolve) => {
      spawn(process.execPath, [cli, 'migrate', '--url', url, '--table', 'orders', '--alter', ALTER, '--execute', '--chunk-time-ms', '200'], {
        stdio: 'inherit',
      }).on('exit', resolve);
    });
    running = false;
    await Promise.all(load);
    if (code !== 0) throw new Error(`shadowcut exited with ${code}`);

    say(`the load made ${writes} write transactions with ${errors} errors; applying the same ALTER to the mirror directly`);
    await db.query(`ALTER TABLE orders_mirror ${ALTER}`);
    const [[diff]] = await db.query<mysql.RowDataPacket[]>(`SELECT
      (SELECT COUNT(*) FROM orders o LEFT JOIN orders_mirror m ON m.id = o.id AND m.qty <=> o.qty AND m.price <=> o.price
         AND m.created_at <=> o.created_at AND m.customer_id <=> o.customer_id AND m.note <=> o.note WHERE m.id IS NULL)
      + (SELECT COUNT(*) FROM orders_mirror m LEFT JOIN orders o ON o.id = m.id WHERE o.id IS NULL) AS n`);
    say(`row-by-row comparison with the mirror: ${diff.n} differences`);
    if (Number(diff.n) !== 0 || errors !== 0) process.exitCode = 1;
  } finally {
    await db.end();
    say('stopping the servers');
    execFileSync('bash', [`${root}scripts/servers.sh`, 'down'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  }
}

await main().catch((error: unknown) => {
  exitOnServersUnavailable('demo', error);
  throw error;
});
