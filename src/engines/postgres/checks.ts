import type pg from 'pg';
import type { CheckResult } from '../../core/types.js';
import { ident, isTrue, qualified } from './connect.js';
import type { TableInfo } from './inspect.js';
import type { PgDetail } from './plan.js';

/** Everything that would make the run unsafe or fail half-way, each with the fix named. */
export async function runChecks(pool: pg.Pool, t: TableInfo, d: PgDetail, resuming: boolean): Promise<CheckResult[]> {
  const { rows } = await pool.query(
    `SELECT current_setting('wal_level') AS wal_level,
            current_setting('server_version_num')::int AS version,
            current_setting('max_replication_slots')::int AS max_slots,
            (SELECT count(*) FROM pg_replication_slots) AS used_slots,
            current_setting('max_wal_senders')::int AS max_senders,
            (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender') AS used_senders,
            r.rolsuper, r.rolreplication, r.rolbypassrls, c.relforcerowsecurity,
            current_setting('max_slot_wal_keep_size') AS wal_keep,
            (SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn))
               FROM pg_replication_slots WHERE slot_name = $4) AS slot_retains,
            (SELECT string_agg(i.inhparent::regclass::text, ', ') FROM pg_inherits i WHERE i.inhrelid = $1) AS parents,
            (SELECT string_agg(i.inhrelid::regclass::text, ', ') FROM pg_inherits i WHERE i.inhparent = $1) AS children,
            pg_has_role(current_user, c.relowner, 'USAGE') AS owner,
            has_schema_privilege(c.relnamespace, 'CREATE') AS create_schema,
            has_database_privilege(current_database(), 'CREATE') AS create_database,
            (SELECT string_agg(pubname, ', ') FROM pg_publication WHERE puballtables) AS all_tables,
            to_regclass($2) IS NOT NULL AS shadow_exists, to_regclass($3) IS NOT NULL AS old_exists,
            EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $4) AS slot_exists,
            EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $4) AS publication_exists,
            (SELECT string_agg(DISTINCT v.oid::regclass::text, ', ')
               FROM pg_depend dep JOIN pg_rewrite rw ON rw.oid = dep.objid JOIN pg_class v ON v.oid = rw.ev_class
              WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass
                AND dep.refobjid = $1 AND v.relkind = 'm') AS matviews,
            (SELECT string_agg(DISTINCT v.oid::regclass::text || ' (' || a.attname || ')', ', ')
               FROM pg_depend dep JOIN pg_rewrite rw ON rw.oid = dep.objid JOIN pg_class v ON v.oid = rw.ev_class
               JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
              WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass
                AND dep.refobjid = $1 AND v.oid <> $1 AND v.relkind = 'v' AND a.attname = ANY($5::text[])) AS bound_views
       FROM pg_roles r, pg_class c WHERE r.rolname = current_user AND c.oid = $1`,
    [t.oid, qualified(t.schema, d.shadow), qualified(t.schema, d.old), d.slot, d.changedColumns],
  );
  const s = rows[0];
  const superuser = isTrue(s.rolsuper);
  const freeSlots = Number(s.max_slots) - Number(s.used_slots);
  const freeSenders = Number(s.max_senders) - Number(s.used_senders);
  const check = (name: string, ok: boolean, good: string, bad: string): CheckResult => ({ name, ok, message: ok ? good : bad });
  const table = `${t.schema}.${t.name}`;
  return [
    check('server version', Number(s.version) >= 140000, `PostgreSQL ${s.version}`,
      `PostgreSQL ${s.version} is too old: logical messages in pgoutput need 14 or later`),
    check('wal_level', s.wal_level === 'logical', 'wal_level = logical',
      `wal_level is ${s.wal_level}; set wal_level = logical in postgresql.conf and restart the server`),
    check('replication slot', freeSlots > 0, `${freeSlots} free replication slot(s)`,
      `all ${s.max_slots} replication slots are in use; raise max_replication_slots (restart) or drop an unused slot`),
    check('wal sender', freeSenders > 0, `${freeSenders} free WAL sender(s)`,
      `all ${s.max_senders} WAL senders are in use; raise max_wal_senders (restart)`),
    check('not partitioned', t.kind !== 'p' && !t.isPartition, 'plain table',
      `${table} is partitioned or a partition; shadowcut does not migrate partitioned tables yet: ALTER the partitions or the parent directly`),
    // Rows of children are read through the parent, and the swap would leave them under the old one.
    check('inheritance', !s.parents && !s.children, 'no inheritance',
      s.parents ? `${table} inherits from ${s.parents}; shadowcut does not migrate tables in an inheritance tree: ALTER it directly`
        : `${table} has inheriting tables (${s.children}); shadowcut does not migrate tables in an inheritance tree: ALTER it directly`),
    // FORCE makes the policies filter even the owner's reads: the copy would silently leave rows out.
    check('row level security', !isTrue(s.relforcerowsecurity) || superuser || isTrue(s.rolbypassrls),
      isTrue(s.relforcerowsecurity) ? 'FORCE ROW LEVEL SECURITY, and the current user bypasses it' : 'the owner reads every row',
      `${table} has FORCE ROW LEVEL SECURITY, so its policies would hide rows from the copy; run as a superuser or a role WITH BYPASSRLS`),
    check('logged', t.persistence !== 'u', 'logged table',
      `${table} is UNLOGGED, so logical replication cannot follow its changes; ALTER TABLE ... SET LOGGED first, or ALTER it directly`),
    // A materialized view stays bound to the old table's OID: it would go on refreshing from the old
    // table, and would keep it from being dropped.
    check('materialized views', !s.matviews, 'none',
      `materialized view(s) ${s.matviews} depend on ${table}; they cannot be moved to the new table: drop them for the migration and create them again after`),
    // Views are recreated on the new table from their definition, which names the old columns.
    check('views', !s.bound_views, 'no view uses a column the ALTER changes',
      `view(s) ${s.bound_views} use column(s) the ALTER drops, renames or retypes; drop them for the migration and create them again after`),
    check('row identity', t.key !== null, `key (${t.key?.columns.join(', ')}) matches the replica identity`, t.noKeyReason),
    // Not a refusal: such a publication also publishes the shadow table, which its subscribers do not have.
    check('publications', true, s.all_tables
      ? `note: publication(s) ${s.all_tables} publish all tables; their subscribers will see the helper table ${d.shadow} and need it or must skip it`
      : 'no FOR ALL TABLES publication', ''),
    // Not a refusal: a slot left by a run that died keeps every WAL segment from then on.
    check('max_slot_wal_keep_size', true, s.wal_keep === '-1'
      ? 'note: max_slot_wal_keep_size is unlimited: if a run dies and is neither resumed nor cleaned up, its slot keeps WAL until the disk fills; consider a limit'
      : `max_slot_wal_keep_size = ${s.wal_keep}`, ''),
    check('table owner', superuser || isTrue(s.owner), 'current user owns the table',
      `the current user does not own ${table}; run as its owner or a superuser`),
    check('replication privilege', superuser || isTrue(s.rolreplication), 'current user may replicate',
      'the current user lacks REPLICATION; ALTER ROLE ... REPLICATION or run as a superuser'),
    check('create privileges', isTrue(s.create_schema) && isTrue(s.create_database), 'CREATE on the schema and the database',
      `the current user needs CREATE on schema ${t.schema} (helper tables) and on the database (publication); GRANT CREATE ON SCHEMA/DATABASE ...`),
    resuming
      ? check('no leftovers', true, 'resuming: the interrupted run\'s shadow, slot and publication are reused', '')
      : check('no leftovers', !isTrue(s.shadow_exists) && !isTrue(s.old_exists) && !isTrue(s.slot_exists) && !isTrue(s.publication_exists),
          'no helper objects from an earlier run', leftovers(s, t, d)),
  ];
}

function leftovers(s: Record<string, unknown>, t: TableInfo, d: PgDetail): string {
  const fixes: string[] = [];
  if (isTrue(s.shadow_exists)) fixes.push(`DROP TABLE ${qualified(t.schema, d.shadow)}`);
  if (isTrue(s.old_exists)) fixes.push(`DROP TABLE ${qualified(t.schema, d.old)} (the table before an earlier migration; keep a copy if you need it)`);
  if (isTrue(s.slot_exists)) fixes.push(`SELECT pg_drop_replication_slot('${d.slot}') (it retains ${s.slot_retains ?? 'no'} of WAL)`);
  if (isTrue(s.publication_exists)) fixes.push(`DROP PUBLICATION ${ident(d.publication)}`);
  return `helper objects of an earlier run exist; if no shadowcut run is active (or resume it with --resume), remove them: ${fixes.join('; ')}`;
}
