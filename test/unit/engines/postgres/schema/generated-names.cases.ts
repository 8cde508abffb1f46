// The names PostgreSQL generates for constraints (src/engines/postgres/schema/generated-names.ts): read
// back from the shadow's, and made again as the server's makeObjectName makes them for the table.
import { describe, expect, it } from 'vitest';
import { generatedNames, objectName } from '../../../../../src/engines/postgres/schema/generated-names.js';

describe('generatedNames', () => {
  it("reads the columns and label after the shadow's name, pass numbers aside", () => {
    expect(generatedNames(['t__new_v_key', 't__new_a_b_fkey1', 't__new_check', 't__new_pkey', 'named_by_user', 't__new_v_idx'], 't__new')).toEqual([
      { columns: 'v', label: 'key' },
      { columns: 'a_b', label: 'fkey' },
      { columns: '', label: 'check' },
      { columns: '', label: 'pkey' },
    ]);
  });

  it('leaves a name the server had to cut short, which cannot be read back', () => {
    const cut = `t__new_${'c'.repeat(52)}_key`;
    expect(Buffer.byteLength(cut)).toBe(63);
    expect(generatedNames([cut], 't__new')).toEqual([]);
  });
});

describe('objectName', () => {
  it('joins table, columns and label', () => {
    expect(objectName('orders', 'customer_id', 'fkey')).toBe('orders_customer_id_fkey');
    expect(objectName('orders', '', 'check')).toBe('orders_check');
  });

  it('shortens the longer of table and columns until the name fits 63 bytes', () => {
    const name = objectName('t'.repeat(60), 'v', 'key');
    expect(name).toBe(`${'t'.repeat(57)}_v_key`);
    expect(objectName('t'.repeat(40), 'c'.repeat(40), 'fkey')).toBe(`${'t'.repeat(29)}_${'c'.repeat(28)}_fkey`);
  });

  it('cuts a multi-byte name at a character boundary', () => {
    const name = objectName('é'.repeat(40), 'v', 'key');
    expect(name).toBe(`${'é'.repeat(28)}_v_key`);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
  });
});
