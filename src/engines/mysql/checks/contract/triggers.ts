import type { RowDataPacket } from 'mysql2/promise';
import { verdict, type Check } from '../../../../core/engine/checks/check.js';
import { mentioned, mentions } from '../../../../core/engine/contract/mentions.js';
import { droppedNames, type ContractContext } from './context.js';

/**
 * A trigger whose body names a dropped column (NEW.c, OLD.c or in a statement) fails on every write
 * it fires for; one on another table that names the dropped table likewise. Triggers on a dropped
 * table go with it.
 */
export const triggers: Check<ContractContext> = {
  name: 'triggers',
  async run(ctx) {
    if (ctx.dropped.kind === 'index') return [];
    const { pool, database, table } = ctx;
    const names = droppedNames(ctx);
    const [rows] = await pool.query<RowDataPacket[]>(
      'SELECT TRIGGER_SCHEMA AS s, TRIGGER_NAME AS n, EVENT_OBJECT_SCHEMA AS os, EVENT_OBJECT_TABLE AS t, ACTION_STATEMENT AS body FROM information_schema.TRIGGERS',
    );
    const onTable = (r: RowDataPacket) => r.os === database && r.t === table;
    const users = rows.filter((r) =>
      ctx.dropped.kind === 'table'
        ? !onTable(r) && mentions(String(r.body), table)
        : mentioned(String(r.body), names).length && (onTable(r) || mentions(String(r.body), table)),
    );
    const list = users.map((r) => `${r.s}.${r.n} (on ${r.t})`).join(', ');
    return verdict(
      'triggers',
      users.length === 0,
      `no trigger mentions ${names.join(', ')}`,
      `trigger(s) ${list} mention ${names.join(', ')}; every write they fire for would fail: drop or change them first (--force does not override a trigger)`,
    );
  },
};
