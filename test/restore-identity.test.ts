import { seal, unseal } from '../src/core/engine/state/state-seal.js';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../src/core/engine/ports/history.js';
import { columns, tableExists } from './support/catalog.js';
import { databases, useDatabase, type Database } from './support/fixture.js';

/**
 * A backup is known by the identity its contract recorded, never by its name: once a backup is gone
 * (dropped, renamed away), a role with only CREATE on the schema can put a table of its own under the
 * name, with a trigger that then runs as whoever writes the application's table, or forged rows.
 */
const ROLE = 'restore_mallory';

/** The other role's statements, each engine's way: PostgreSQL SET ROLE, MySQL a login of its own. */
const roles = {
  postgres: {
    async create(db: Database) {
      await db.query(`DROP OWNED BY ${ROLE}`).catch(() => {});
      await db.query(`DROP ROLE IF EXISTS ${ROLE}`);
      await db.query(`CREATE ROLE ${ROLE} NOSUPERUSER`);
      await db.query(`GRANT CREATE ON SCHEMA public TO ${ROLE}`);
    },
    async run(db: Database, statements: string[]) {
      const s = await db.session();
      try {
        await s.query(`SET ROLE ${ROLE}`);
        for (const sql of statements) await s.query(sql);
      } finally {
        await s.query('RESET ROLE');
        s.release();
      }
    },
    async remove(db: Database) {
      await db.query(`DROP OWNED BY ${ROLE}`);
      await db.query(`DROP ROLE ${ROLE}`);
    },
    trigger: (t: string) => [
      `CREATE FUNCTION ${t}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.v := 'forged'; RETURN NEW; END $$`,
      `CREATE TRIGGER ${t}_tr BEFORE INSERT OR UPDATE ON ${t} FOR EACH ROW EXECUTE FUNCTION ${t}_fn()`,
    ],
  },
  mysql: {
    async create(db: Database) {
      const database = new URL(db.url).pathname.slice(1);
      await db.query(`DROP USER IF EXISTS '${ROLE}'@'%'`);
      await db.query(`CREATE USER '${ROLE}'@'%' IDENTIFIED BY 'mallory'`);
      await db.query(`GRANT CREATE, INSERT, SELECT, TRIGGER ON \`${database}\`.* TO '${ROLE}'@'%'`);
    },
    async run(db: Database, statements: string[]) {
      const url = new URL(db.url);
      url.username = ROLE;
      url.password = 'mallory';
      const conn = await mysql.createConnection(url.toString());
      try {
        for (const sql of statements) await conn.query(sql);
      } finally {
        await conn.end();
      }
    },
    async remove(db: Database) {
      await db.query(`DROP USER IF EXISTS '${ROLE}'@'%'`);
    },
    // A user without SUPER cannot make a trigger while the binlog is on: rows of its own then.
    trigger: (): string[] => [],
  },
};

const comment = (db: Database, t: string) =>
  db.kind === 'mysql'
    ? `SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${t}'`
    : `SELECT obj_description('public.${t}'::regclass, 'pg_class')`;

describe.each(databases)('restore reads only the table its contract kept ($name)', ({ open }) => {
  const db = useDatabase(open, 'ri', 'ri_bak', 'ri_bak_real', 'ri_expected', 'rc', 'rc_bak', 'rc_bak_real', 'rc_expected', 'rp', 'rp_expected');
  const role = roles[db.kind];
  const cli = (command: string, args: string[]) => db.cli([command, '--url', '$URL', ...args]);
  const history = async (t: string): Promise<HistoryEntry[]> =>
    cli('history', ['--table', t, '--json'])
      .stdout.trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as HistoryEntry);
  const refused = (r: { code: number | null; stderr: string }, message: RegExp) => {
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  };
  const rename = (a: string, b: string) => db.query(db.kind === 'mysql' ? `RENAME TABLE ${a} TO ${b}` : `ALTER TABLE ${a} RENAME TO ${b}`);
  const schema = db.kind === 'mysql' ? 'shadowcut_test' : 'public';

  async function makeTable(t: string): Promise<void> {
    await db.drop(t, `${t}_bak`, `${t}_bak_real`, `${t}_expected`);
    await db.query(`DELETE FROM shadowcut_history WHERE table_name = '${schema}.${t}'`).catch(() => {});
    await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, n INT, v VARCHAR(40))`);
    await db.query(`INSERT INTO ${t} SELECT g, g, CONCAT('v', g) FROM (${db.series(200)}) s`);
    await db.query(`CREATE TABLE ${t}_expected AS SELECT * FROM ${t}`);
    await db.query(`ALTER TABLE ${t}_expected ADD PRIMARY KEY (id)`);
  }

  /** The contract's own backup, under its name again: restored exactly. */
  async function restoresExactly(t: string): Promise<void> {
    await db.drop(`${t}_bak`);
    await rename(`${t}_bak_real`, `${t}_bak`);
    const r = cli('restore', ['--table', t, '--from', `${t}_bak`, '--execute']);
    expect(r.code, r.stderr).toBe(0);
    expect(await db.differences(t, `${t}_expected`)).toEqual([]);
  }

  beforeAll(() => role.create(db));
  afterAll(() => role.remove(db));

  it("refuses another role's table under a dropped table's backup name, changing nothing; the contract's own backup is restored", async () => {
    await makeTable('ri');
    expect(cli('contract', ['--table', 'ri', '--drop-table', '--backup-to', 'ri_bak', '--execute']).code).toBe(0);
    const recorded = ((await history('ri')).pop()!.detail as { backupIdentity: string }).backupIdentity;
    expect(recorded).toMatch(db.kind === 'mysql' ? /^InnoDB table id \d+$/ : /^oid \d+, owner oid \d+$/);

    // Someone moved the backup away; the other role made a table under its name, with a trigger and rows of its own.
    await rename('ri_bak', 'ri_bak_real');
    await role.run(db, [
      `CREATE TABLE ri_bak (id INT PRIMARY KEY, n INT, v VARCHAR(40))`,
      ...role.trigger('ri_bak'),
      `INSERT INTO ri_bak VALUES (1, 1, 'planted')`,
    ]);
    const before = await history('ri');
    for (const execute of [[], ['--execute']]) {
      refused(
        cli('restore', ['--table', 'ri', '--from', 'ri_bak', ...execute]),
        new RegExp(`^shadowcut: ${schema}\\.ri_bak is not the table the contract of \\S+ kept \\(${recorded}; now .*\\): someone replaced it`),
      );
    }
    expect(await tableExists(db, 'ri')).toBe(false);
    expect(await db.query('SELECT v FROM ri_bak')).toEqual([[db.kind === 'mysql' ? 'planted' : 'forged']]);
    expect(await history('ri')).toEqual(before);
    expect(await db.helpers('ri')).toEqual([]);

    await restoresExactly('ri');
  });

  it("refuses a column backup re-made under its name, mark and all, by another role or by the migrating role itself; the contract's own is restored", async () => {
    await makeTable('rc');
    expect(cli('contract', ['--table', 'rc', '--drop-column', 'v', '--backup-to', 'rc_bak', '--execute']).code).toBe(0);
    const mark = String((await db.query(comment(db, 'rc_bak')))[0][0]);
    expect(mark).toMatch(/^shadowcut: /);
    await rename('rc_bak', 'rc_bak_real');

    // The other role copies the mark (MySQL keeps no owner, so it is all that proved the backup) and plants its values.
    const marked =
      db.kind === 'mysql'
        ? [`CREATE TABLE rc_bak (id INT PRIMARY KEY, v VARCHAR(40)) COMMENT='${mark}'`]
        : [`CREATE TABLE rc_bak (id INT PRIMARY KEY, v VARCHAR(40))`, `COMMENT ON TABLE rc_bak IS '${mark}'`];
    await role.run(db, [...marked, `INSERT INTO rc_bak SELECT g, 'planted' FROM (${db.series(200)}) s`]);
    refused(
      cli('restore', ['--table', 'rc', '--from', 'rc_bak', '--execute']),
      // PostgreSQL knows the owner, and refuses by it first.
      db.kind === 'mysql' ? /rc_bak is not the table the contract of \S+ kept/ : new RegExp(`refusing to use public\\.rc_bak: it is owned by ${ROLE}`),
    );
    await db.drop('rc_bak');

    // A copy the migrating role made (say, from a dump) is as much a stranger: its rows are not the kept ones.
    await db.query('CREATE TABLE rc_bak AS SELECT * FROM rc_bak_real');
    await db.query(db.kind === 'mysql' ? `ALTER TABLE rc_bak ADD PRIMARY KEY (id), COMMENT='${mark}'` : 'ALTER TABLE rc_bak ADD PRIMARY KEY (id)');
    if (db.kind === 'postgres') await db.query(`COMMENT ON TABLE rc_bak IS '${mark}'`);
    refused(cli('restore', ['--table', 'rc', '--from', 'rc_bak', '--execute']), /rc_bak is not the table the contract of \S+ kept/);
    expect(await columns(db, 'rc')).toEqual(['id', 'n']);
    expect(await db.helpers('rc')).toEqual([]);
    await restoresExactly('rc');
  });

  it('refuses a backup whose contract recorded no identity (made before it was recorded)', async () => {
    await makeTable('ri');
    expect(cli('contract', ['--table', 'ri', '--drop-table', '--backup-to', 'ri_bak', '--execute']).code).toBe(0);
    // The entry as a version before the identity was recorded wrote it, sealed as shadowcut seals its entries.
    const stored = await db.query(`SELECT id, ${db.kind === 'mysql' ? 'entry' : 'entry::text'} FROM shadowcut_history WHERE table_name = '${schema}.ri'`);
    for (const [id, text] of stored) {
      const entry = JSON.parse(unseal('history-entry', String(text), 'a history entry')) as { detail: { backupIdentity?: unknown } };
      delete entry.detail.backupIdentity;
      await db.query(`UPDATE shadowcut_history SET entry = ${db.param(1)} WHERE id = ${db.param(2)}`, [seal('history-entry', JSON.stringify(entry)), id]);
    }
    refused(cli('restore', ['--table', 'ri', '--from', 'ri_bak', '--execute']), /recorded no identity of \S+ri_bak, .*put it back yourself/);
    expect(await tableExists(db, 'ri')).toBe(false);
    expect(await tableExists(db, 'ri_bak')).toBe(true);
  });

  it.runIf(db.kind === 'mysql')('MySQL: refuses --backup-to, changing nothing, without the PROCESS privilege that reads the id', async () => {
    await makeTable('rp');
    const database = new URL(db.url).pathname.slice(1);
    await db.query("DROP USER IF EXISTS 'restore_noproc'@'%'");
    await db.query("CREATE USER 'restore_noproc'@'%' IDENTIFIED BY 'noproc'");
    await db.query(`GRANT ALL ON \`${database}\`.* TO 'restore_noproc'@'%'`);
    try {
      const url = new URL(db.url);
      url.username = 'restore_noproc';
      url.password = 'noproc';
      for (const drop of [['--drop-table'], ['--drop-column', 'v']]) {
        const r = db.cli(['contract', '--url', url.toString(), '--table', 'rp', ...drop, '--backup-to', 'rp_bak', '--execute']);
        refused(r, /--backup-to needs InnoDB's table id, .* PROCESS privilege .* or give --no-backup/);
      }
      expect(await columns(db, 'rp')).toEqual(['id', 'n', 'v']);
      expect(await tableExists(db, 'rp_bak')).toBe(false);
      expect(await db.differences('rp', 'rp_expected')).toEqual([]);
    } finally {
      await db.query("DROP USER IF EXISTS 'restore_noproc'@'%'");
    }
  });
});
