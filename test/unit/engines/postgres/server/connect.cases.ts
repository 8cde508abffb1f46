// The pure parts of src/engines/postgres/server/: SQL quoting and the keyset dialect (sql.ts), LSN
// arithmetic (lsn.ts), --table names, helper and slot names (helper-names.ts), and which errors are
// worth a retry (errors.ts). connect.ts itself holds the pool, which needs a server.
import { describe, expect, it } from 'vitest';
import { dialect, ident, parseTableName, qualified } from '../../../../../src/engines/postgres/server/sql.js';
import { comparePositions, formatLsn, lsnValue } from '../../../../../src/engines/postgres/server/lsn.js';
import { asLockTimeout, isRolledBack, isTransientPgError } from '../../../../../src/engines/postgres/server/errors.js';
import { helperNames, slotName } from '../../../../../src/engines/postgres/server/helper-names.js';
import { LockTimeoutError } from '../../../../../src/core/engine/errors.js';

describe('quoting', () => {
  it('quotes every name, doubling its double quotes, and numbers parameters with an optional type', () => {
    expect(ident('Order "items"')).toBe('"Order ""items"""');
    expect(qualified('my schema', 'select')).toBe('"my schema"."select"');
    expect([dialect.param(3), dialect.param(4, 'bigint')]).toEqual(['$3', '$4::bigint']);
  });
});

describe('LSNs', () => {
  it('reads X/Y as a 64-bit number and writes it back in upper case', () => {
    expect(lsnValue('0/16B3748')).toBe(0x16b3748n);
    expect(lsnValue('1/0')).toBe(1n << 32n);
    expect(lsnValue('FFFFFFFF/FFFFFFFF')).toBe(2n ** 64n - 1n);
    expect(formatLsn(lsnValue('a/b0c'))).toBe('A/B0C');
    expect(formatLsn(lsnValue('1/0') - 1n)).toBe('0/FFFFFFFF');
  });

  it('orders positions by number, where text comparison puts 9/0 after 10/0', () => {
    expect(comparePositions({ lsn: '9/0' }, { lsn: '10/0' })).toBe(-1);
    expect(comparePositions({ lsn: '0/FFFFFFFF' }, { lsn: '1/0' })).toBe(-1);
    expect(comparePositions({ lsn: '2/A' }, { lsn: '2/a' })).toBe(0);
    expect(comparePositions({ lsn: '2/B' }, { lsn: '2/A' })).toBe(1);
  });
});

describe('parseTableName', () => {
  it('folds unquoted parts to lower case and keeps quoted ones as written, dots and doubled quotes included', () => {
    expect(parseTableName('Orders')).toEqual({ schema: 'public', name: 'orders' });
    expect(parseTableName('Sales.Orders')).toEqual({ schema: 'sales', name: 'orders' });
    expect(parseTableName('"My.Schema"."Or""ders"')).toEqual({ schema: 'My.Schema', name: 'Or"ders' });
  });

  it('refuses three parts, empty parts, spaces and stray quotes', () => {
    for (const bad of ['a.b.c', 'a.', '.b', 'my table', '"open', 'a"b', '""']) expect(() => parseTableName(bad), bad).toThrow(/cannot read table name/);
  });
});

describe('helper names', () => {
  it('suffixes the helper tables, and names the stream after a slug and a hash of the qualified name', () => {
    const names = helperNames('public', 'Orders-2024');
    expect([names.shadow, names.old, names.log]).toEqual(['Orders-2024__new', 'Orders-2024__old', 'Orders-2024__log']);
    expect(names.slot).toMatch(/^shadowcut_orders_2024_[0-9a-f]{8}$/);
    expect(helperNames('sales', 'Orders-2024').slot).not.toBe(names.slot);
    expect(names.reverseCapture.captureFunction).toBe(`${names.slot}_r`);
  });

  it('refuses a table whose shadow name would pass 63 bytes', () => {
    expect(helperNames('public', 'x'.repeat(58)).shadow).toHaveLength(63);
    expect(() => helperNames('public', 'x'.repeat(59))).toThrow(/too long for helper tables/);
    expect(() => helperNames('public', 'é'.repeat(30))).toThrow(/too long/);
  });

  it("keeps two databases' slots apart, the same way every time", () => {
    expect(slotName('shadowcut_t_1', 'tenant_a')).toBe(slotName('shadowcut_t_1', 'tenant_a'));
    expect(slotName('shadowcut_t_1', 'tenant_a')).not.toBe(slotName('shadowcut_t_1', 'tenant_b'));
    expect(slotName('shadowcut_t_1', 'tenant_a')).toMatch(/^shadowcut_t_1_[0-9a-f]{6}$/);
  });
});

describe('errors', () => {
  it('retries lost connections, a shutting-down server, serialization failures and deadlocks, not a constraint violation', () => {
    for (const code of ['57P01', '08006', '40001', '40P01', '55006', 'ECONNRESET']) expect(isTransientPgError({ code }), code).toBe(true);
    expect(isTransientPgError({ message: 'Connection terminated unexpectedly' })).toBe(true);
    expect(isTransientPgError({ code: 'XX000', message: 'failure on connection marked as essential: 127.0.0.1:9701' }), 'a Citus worker gone').toBe(true);
    expect(isTransientPgError({ code: '22023', message: 'invalid snapshot identifier: "00000008-0000162A-1"' }), 'its exporter ended').toBe(true);
    expect(isTransientPgError({ code: 'XX000', message: 'server closed the connection unexpectedly\n\tThis probably means...' }), 'relayed by Citus').toBe(
      true,
    );
    expect(isTransientPgError({ code: 'XX000', message: 'SSL SYSCALL error: EOF detected' }), 'relayed by Citus over TLS').toBe(true);
    expect(isTransientPgError({ code: '23505', message: 'duplicate key value' })).toBe(false);
    expect([isRolledBack({ code: '40P01' }), isRolledBack({ code: '57P01' })]).toEqual([true, false]);
  });

  it("turns lock_timeout's 55P03 into the runner's lock timeout, and nothing else", () => {
    expect(asLockTimeout({ code: '55P03' }, 'rename')).toBeInstanceOf(LockTimeoutError);
    const other = { code: '42P01' };
    expect(asLockTimeout(other, 'rename')).toBe(other);
  });
});
