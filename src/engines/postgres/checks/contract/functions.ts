import { verdict, type Check } from '../../../../core/engine/checks/check.js';
import { mentioned, mentions } from '../../../../core/engine/contract/mentions.js';
import type { ContractCheck } from '../../../../core/engine/ports/contract.js';
import { droppedNames, type ContractContext } from './context.js';

/**
 * Functions and procedures whose body names the table and a dropped column (or, for the table,
 * the table): PL/pgSQL is checked only when called, so the DROP goes through and they fail later.
 * Their source is searched as text, best effort (dynamic SQL is not seen; a same-named column of
 * another table is), so --force may override it. Trigger functions of the table are the triggers
 * check's.
 */
export const functions: Check<ContractContext> = {
  name: 'functions',
  async run(ctx): Promise<ContractCheck[]> {
    const { pool, t, dropped } = ctx;
    if (dropped.kind === 'index') return [];
    const names = droppedNames(ctx);
    // SQL-standard bodies (PostgreSQL 14+) are kept parsed, not as text.
    const { rows: v } = await pool.query(`SELECT current_setting('server_version_num')::int >= 140000 AS parsed`);
    const body = v[0].parsed === 't' ? 'coalesce(pg_get_function_sqlbody(p.oid), p.prosrc)' : 'p.prosrc';
    const { rows } = await pool.query(
      `SELECT p.oid::regprocedure::text AS name, ${body} AS body FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND ${body} ILIKE '%' || $1 || '%'
          AND NOT EXISTS (SELECT 1 FROM pg_trigger tg WHERE tg.tgfoid = p.oid AND tg.tgrelid = $2)`,
      [t.name, t.oid],
    );
    const users = rows.filter((r) => mentions(String(r.body), t.name) && mentioned(String(r.body), names).length).map((r) => String(r.name));
    return [
      {
        ...verdict(
          'functions',
          users.length === 0,
          `no function mentions ${names.join(', ')} (their source searched: best effort)`,
          `function(s) ${users.join(', ')} mention ${names.join(', ')} of ${t.schema}.${t.name}; change them first, or --force if they do not use it`,
        ),
        overridable: true,
      },
    ];
  },
};
