// What one part of a PostgreSQL ALTER does (src/engines/postgres/in-place/part-kind.ts), as the
// in-place path's choice of steps needs it, and the forms it refuses.
import { describe, expect, it } from 'vitest';
import { partKind, unquote } from '../../../../../src/engines/postgres/in-place/part-kind.js';

describe('partKind', () => {
  it.each([
    ['ADD COLUMN n int NOT NULL DEFAULT 0', { kind: 'add-column', constrained: false }],
    ['ADD COLUMN unique_code text', { kind: 'add-column', constrained: false }],
    ['add p int references parent', { kind: 'add-column', constrained: true }],
    ['ADD COLUMN u int UNIQUE', { kind: 'add-column', constrained: true }],
    ['ALTER COLUMN a TYPE bigint', { kind: 'type' }],
    ['ALTER a SET DATA TYPE numeric(12,2)', { kind: 'type' }],
    ['ALTER COLUMN "Mixed" SET NOT NULL', { kind: 'set-not-null', column: 'Mixed' }],
    ['alter column Lower set not null ', { kind: 'set-not-null', column: 'lower' }],
    ['ADD CONSTRAINT c CHECK (a > 0)', { kind: 'add-check', notValid: false }],
    ['ADD CHECK (a > 0) NOT VALID', { kind: 'add-check', notValid: true }],
    ['ADD UNIQUE (a, b)', { kind: 'add-unique' }],
    ['ADD CONSTRAINT u UNIQUE NULLS NOT DISTINCT (a)', { kind: 'add-unique' }],
    ['ADD CONSTRAINT u UNIQUE USING INDEX i', { kind: 'metadata' }],
    ['ADD PRIMARY KEY USING INDEX i', { kind: 'metadata' }],
    ['ADD PRIMARY KEY (id)', { kind: 'other' }],
    ['ADD CONSTRAINT x EXCLUDE USING gist (r WITH &&)', { kind: 'other' }],
    ['DROP COLUMN a', { kind: 'metadata' }],
    ['ALTER COLUMN a SET DEFAULT 0', { kind: 'metadata' }],
    ['ALTER COLUMN a DROP NOT NULL', { kind: 'metadata' }],
    ['ALTER COLUMN a SET STATISTICS 500', { kind: 'metadata' }],
    ['DROP CONSTRAINT c', { kind: 'drop-constraint' }],
    ['RENAME CONSTRAINT a TO b', { kind: 'rename-constraint' }],
    ['RENAME COLUMN a TO b', { kind: 'rename-column' }],
    ['RENAME "a" TO b', { kind: 'rename-column' }],
    ['VALIDATE CONSTRAINT c', { kind: 'other' }],
    ['SET (fillfactor = 70)', { kind: 'other' }],
  ])('%s', (clause, kind) => {
    expect(partKind(clause)).toEqual(kind);
  });

  it("reads a foreign key's name and columns as the catalog spells them", () => {
    expect(partKind('ADD CONSTRAINT "Fk" FOREIGN KEY (a, "B") REFERENCES p (x, y) NOT VALID')).toEqual({
      kind: 'add-foreign-key',
      notValid: true,
      name: 'Fk',
      columns: ['a', 'B'],
    });
    expect(partKind('ADD FOREIGN KEY (Parent_Id) REFERENCES p')).toEqual({ kind: 'add-foreign-key', notValid: false, name: null, columns: ['parent_id'] });
  });

  it('refuses to rename the table or move it to another schema', () => {
    expect(() => partKind('RENAME TO orders2')).toThrow(/renames or moves the table/);
    expect(() => partKind('SET SCHEMA archive')).toThrow(/renames or moves the table/);
  });
});

describe('unquote', () => {
  it('keeps a quoted name as written (doubled quotes undone) and folds an unquoted one', () => {
    expect(unquote('"We""ird"')).toBe('We"ird');
    expect(unquote('MiXeD')).toBe('mixed');
  });
});
