// The PostgreSQL trigger capture's function (src/engines/postgres/capture/trigger/capture-function.ts):
// what each operation logs, the guard that keeps it to the table's own triggers, and its pinned path.
import { describe, expect, it } from 'vitest';
import { captureFunctionSql } from '../../../../../../src/engines/postgres/capture/trigger/capture-function.js';

const sql = captureFunctionSql('"public"."cap"', '"public"."orders__log"', ['id', 'Line'], 16384, ['16390', '16391']);

describe('captureFunctionSql', () => {
  it('is a SECURITY DEFINER trigger function that resolves names in pg_catalog only', () => {
    expect(sql).toMatch(
      /^CREATE OR REPLACE FUNCTION "public"\."cap"\(\) RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS \$shadowcut\$/,
    );
    expect(sql.endsWith('END $shadowcut$')).toBe(true);
  });

  it('refuses to run for any table but this one and its partitions, attached since included', () => {
    expect(sql).toContain("IF TG_RELID <> ALL ('{16384,16390,16391}'::oid[])");
    expect(sql).toContain('NOT EXISTS (SELECT 1 FROM pg_partition_ancestors(TG_RELID) a WHERE a.relid = 16384::oid)');
    expect(sql).toContain("RAISE EXCEPTION 'shadowcut: capture of %', 16384;");
  });

  it('logs a TRUNCATE, the new key of an insert, the old key of a delete or of an update that kept it, both keys of one that moved it', () => {
    expect(sql).toContain('INSERT INTO "public"."orders__log" (truncated) VALUES (true);');
    expect(sql).toContain(`ELSIF TG_OP = 'INSERT' THEN\n  INSERT INTO "public"."orders__log" (o_1, o_2) VALUES (NEW."id", NEW."Line");`);
    expect(sql).toContain(
      `ELSIF TG_OP = 'DELETE' OR ROW(OLD."id"::text, OLD."Line"::text, NULL) IS NOT DISTINCT FROM ROW(NEW."id"::text, NEW."Line"::text, NULL) THEN\n  INSERT INTO "public"."orders__log" (o_1, o_2) VALUES (OLD."id", OLD."Line");`,
    );
    expect(sql).toContain('INSERT INTO "public"."orders__log" (o_1, o_2, n_1, n_2) VALUES (OLD."id", OLD."Line", NEW."id", NEW."Line");');
  });
});
