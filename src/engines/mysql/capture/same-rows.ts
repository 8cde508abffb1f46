import type { MysqlColumn } from '../schema/inspect.js';

const INTEGERS = ['tinyint', 'smallint', 'mediumint', 'int', 'bigint'];

interface Parsed {
  base: string;
  args: number[];
  unsigned: boolean;
}

function parse(type: string): Parsed | null {
  const m = /^([a-z]+)(?:\(([\d, ]+)\))?((?:\s+(?:unsigned|signed|zerofill))*)$/.exec(type.trim().toLowerCase());
  if (!m) return null;
  const base = m[1] === 'integer' ? 'int' : m[1] === 'numeric' ? 'decimal' : m[1];
  return { base, args: m[2] ? m[2].split(',').map((a) => Number(a.trim())) : [], unsigned: /unsigned|zerofill/.test(m[3] ?? '') };
}

/**
 * Whether the new type holds every value of the old one as the same value, compared the same way,
 * so that a cascade's parent values find in the new table exactly the rows they found in the
 * original: a wider integer (unsigned to signed only when wider), a longer VARCHAR or VARBINARY of the same
 * collation, a DECIMAL with at least as many digits on each side of the point, a
 * date-time type with a longer fraction of a second. A change of collation, character set, sign or
 * kind, or a narrowing, does not (a BINARY(n) is padded to its length, so it never grows).
 */
export function findsSameRows(before: MysqlColumn, after: MysqlColumn): boolean {
  if (before.type.toLowerCase() === after.type.toLowerCase() && before.collation === after.collation) return true;
  if (before.collation !== after.collation) return false;
  const a = parse(before.type);
  const b = parse(after.type);
  if (!a || !b) return false;
  const [ia, ib] = [INTEGERS.indexOf(a.base), INTEGERS.indexOf(b.base)];
  if (ia >= 0 && ib >= 0) {
    if (a.unsigned === b.unsigned) return ib >= ia;
    // Unsigned values fit a signed type only one size up; a signed type's negatives fit no unsigned one.
    return a.unsigned && ib > ia;
  }
  if (a.base !== b.base) return false;
  const [la, lb] = [a.args[0] ?? 0, b.args[0] ?? 0];
  switch (a.base) {
    case 'varchar':
    case 'varbinary':
      return lb >= la;
    case 'decimal': {
      // DECIMAL alone is DECIMAL(10,0); an unsigned one holds no negative, so the same sign only.
      const [pa, pb, sa, sb] = [a.args[0] ?? 10, b.args[0] ?? 10, a.args[1] ?? 0, b.args[1] ?? 0];
      return a.unsigned === b.unsigned && sb >= sa && pb - sb >= pa - sa;
    }
    case 'datetime':
    case 'time':
    case 'timestamp':
      return lb >= la;
    default:
      return false;
  }
}
