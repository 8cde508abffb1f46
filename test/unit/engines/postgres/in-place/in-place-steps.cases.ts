// The in-place path's statements (src/engines/postgres/in-place/in-place-steps.ts): what may fail on
// the rows runs first with its undo, then every change in one short transaction; mixes refused.
import { describe, expect, it } from 'vitest';
import { inPlaceSteps, type Probed } from '../../../../../src/engines/postgres/in-place/in-place-steps.js';
import { partKind } from '../../../../../src/engines/postgres/in-place/part-kind.js';
import type { AlterPart } from '../../../../../src/core/engine/ports/in-place.js';

const T = '"public"."orders"';
const probed = (clause: string, cls: AlterPart['class'], extra: Partial<Probed> = {}): Probed => ({
  part: { clause, class: cls, reason: '', locks: '', breaking: [] },
  kind: partKind(clause),
  reads: [],
  changes: [],
  ...extra,
});
const steps = (...parts: Probed[]) => inPlaceSteps(T, 'public', 'orders', parts);

describe('inPlaceSteps', () => {
  it('runs instant parts together in one ALTER TABLE, in one transaction', () => {
    expect(steps(probed('ADD COLUMN n int', 'instant'), probed('ALTER COLUMN a SET DEFAULT 0', 'instant'))).toEqual([
      {
        what: `ALTER TABLE ${T} ADD COLUMN n int, ALTER COLUMN a SET DEFAULT 0`,
        sql: [`ALTER TABLE ${T} ADD COLUMN n int, ALTER COLUMN a SET DEFAULT 0`],
        transaction: true,
        undo: [],
      },
    ]);
  });

  it('gives a RENAME a statement of its own, in order', () => {
    const [last] = steps(probed('ADD COLUMN n int', 'instant'), probed('RENAME COLUMN a TO b', 'instant'), probed('DROP COLUMN c', 'instant')) as never[];
    expect(last).toMatchObject({
      what: '3 ALTER TABLE statements in one transaction',
      sql: [`ALTER TABLE ${T} ADD COLUMN n int`, `ALTER TABLE ${T} RENAME COLUMN a TO b`, `ALTER TABLE ${T} DROP COLUMN c`],
      transaction: true,
    });
  });

  it('adds a CHECK NOT VALID and validates it first, with its undo; nothing is left for the final transaction', () => {
    expect(steps(probed('ADD CHECK (a > 0)', 'validate-later', { constraint: 'orders_a_check' }))).toEqual([
      {
        what: 'validate orders_a_check',
        sql: [`ALTER TABLE ${T} ADD CONSTRAINT "orders_a_check" CHECK (a > 0) NOT VALID`, `ALTER TABLE ${T} VALIDATE CONSTRAINT "orders_a_check"`],
        transaction: false,
        undo: [`ALTER TABLE ${T} DROP CONSTRAINT IF EXISTS "orders_a_check"`],
      },
    ]);
  });

  it('sets NOT NULL over a validated CHECK, dropped after in a statement of its own', () => {
    const out = steps(probed('ALTER COLUMN "Qty" SET NOT NULL', 'validate-later'));
    expect(out).toEqual([
      {
        what: 'validate orders_Qty_not_null_sc_chk',
        sql: [
          `ALTER TABLE ${T} ADD CONSTRAINT "orders_Qty_not_null_sc_chk" CHECK ("Qty" IS NOT NULL) NOT VALID`,
          `ALTER TABLE ${T} VALIDATE CONSTRAINT "orders_Qty_not_null_sc_chk"`,
        ],
        transaction: false,
        undo: [`ALTER TABLE ${T} DROP CONSTRAINT IF EXISTS "orders_Qty_not_null_sc_chk"`],
      },
      {
        what: '2 ALTER TABLE statements in one transaction',
        sql: [`ALTER TABLE ${T} ALTER COLUMN "Qty" SET NOT NULL`, `ALTER TABLE ${T} DROP CONSTRAINT "orders_Qty_not_null_sc_chk"`],
        transaction: true,
        undo: [],
      },
    ]);
  });

  it("keeps the NOT NULL check's name within 63 characters", () => {
    const long = 'c'.repeat(80);
    const [validate] = steps(probed(`ALTER COLUMN ${long} SET NOT NULL`, 'validate-later')) as { what: string }[];
    const name = validate.what.replace('validate ', '');
    expect(name).toHaveLength(63);
    expect(name.endsWith('_sc_chk')).toBe(true);
  });

  it('builds a unique index CONCURRENTLY on the real table, then attaches it as the constraint', () => {
    const index = {
      oid: '1',
      name: 'orders_v_key',
      create: 'CREATE UNIQUE INDEX orders_v_key ON ONLY pg_temp_3.orders USING btree (v)',
      deferrable: ' DEFERRABLE',
    };
    expect(steps(probed('ADD UNIQUE (v)', 'online-index', { index }))).toEqual([
      {
        what: 'build orders_v_key concurrently',
        sql: [`CREATE UNIQUE INDEX CONCURRENTLY orders_v_key ON ${T} USING btree (v)`],
        transaction: false,
        undo: ['DROP INDEX CONCURRENTLY IF EXISTS "public"."orders_v_key"'],
      },
      {
        what: `ALTER TABLE ${T} ADD CONSTRAINT "orders_v_key" UNIQUE USING INDEX "orders_v_key" DEFERRABLE`,
        sql: [`ALTER TABLE ${T} ADD CONSTRAINT "orders_v_key" UNIQUE USING INDEX "orders_v_key" DEFERRABLE`],
        transaction: true,
        undo: [],
      },
    ]);
  });

  it('refuses a check on a column another part changes, or on one the ALTER adds', () => {
    const retype = probed('ALTER COLUMN a TYPE bigint', 'instant', { changes: ['2'] });
    const check = probed('ADD CHECK (a > 0)', 'validate-later', { constraint: 'c', reads: ['2'] });
    expect(steps(check, retype)).toBe(
      '"ADD CHECK (a > 0)" checks a column that "ALTER COLUMN a TYPE bigint" changes: in place it could not be checked before the change and still be all or nothing',
    );
    expect(steps(probed('ADD CHECK (n > 0)', 'validate-later', { constraint: 'c', reads: ['new:n'] }))).toMatch(/checks a column the same ALTER adds/);
  });
});
