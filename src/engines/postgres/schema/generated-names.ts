import type { Client } from '../server/connect.js';
import { ident } from '../server/sql.js';

/**
 * A constraint the ALTER adds without a name (`ADD COLUMN p int REFERENCES parent`, `ADD UNIQUE (v)`)
 * is named by the server after the table it is added to: on the shadow `t__new_v_key`, where the
 * native ALTER makes `t_v_key`. What the server put between the table's name and the label is kept
 * here, so the cut-over can give the constraint the name the native ALTER would have.
 */
export interface GeneratedName {
  /** The columns' part (`v`, `a_b`); empty for a CHECK that names no column. */
  columns: string;
  label: string;
}

/** What follows the table's name in a generated one: `_<columns>_<label>[<pass>]`, or `_<label>` for a CHECK that names no column. */
const AFTER_TABLE = /^(?:_(.*))?_(check|fkey|key|excl|pkey)\d*$/s;
/** The labels of constraints that own an index of the same name. */
const INDEX_BACKED = ['key', 'pkey', 'excl'];
/** NAMEDATALEN - 1: a generated name the server had to cut short cannot be read back into its parts. */
const MAX_NAME_BYTES = 63;

/** The parts of the names the ALTER generated on the shadow `shadowName`; names given by the ALTER are left alone. */
export function generatedNames(added: string[], shadowName: string): GeneratedName[] {
  const out: GeneratedName[] = [];
  for (const name of added) {
    if (!name.startsWith(`${shadowName}_`) || Buffer.byteLength(name) >= MAX_NAME_BYTES) continue;
    const match = AFTER_TABLE.exec(name.slice(shadowName.length));
    if (match) out.push({ columns: match[1] ?? '', label: match[2] });
  }
  return out;
}

/**
 * The server's makeObjectName: `table_columns_label`, the longer of the first two parts shortened
 * (at a character boundary) until the whole fits in NAMEDATALEN - 1 bytes.
 */
export function objectName(table: string, columns: string, label: string): string {
  const a = Buffer.from(table);
  const b = Buffer.from(columns);
  let na = a.length;
  let nb = b.length;
  const room = MAX_NAME_BYTES - (columns ? 1 : 0) - (label.length + 1);
  while (na + nb > room) {
    if (na > nb) na--;
    else nb--;
  }
  return `${clip(a, na)}${columns ? `_${clip(b, nb)}` : ''}_${label}`;
}

function clip(bytes: Buffer, n: number): string {
  let end = n;
  while (end > 0 && end < bytes.length && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString();
}

/**
 * Under the cut-over's lock, after the renames: each constraint the ALTER generated on the shadow,
 * oldest first, takes the first name the server would choose for it on the table now (`t_v_key`,
 * else `t_v_key1`, ...: free among the schema's constraints and relations).
 */
export async function nameLikeNative(client: Client, table: { schema: string; name: string; shadow: string }, generated: GeneratedName[]): Promise<void> {
  if (generated.length === 0) return;
  const { rows } = await client.query(`SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND starts_with(conname, $2) ORDER BY oid`, [
    `${ident(table.schema)}.${ident(table.name)}`,
    `${table.shadow}_`,
  ]);
  const left = [...generated];
  for (const { conname } of rows as { conname: string }[]) {
    const [parts] = generatedNames([conname], table.shadow);
    const at = parts ? left.findIndex((g) => g.columns === parts.columns && g.label === parts.label) : -1;
    if (at === -1) continue;
    const [g] = left.splice(at, 1);
    const name = await freeName(client, table.schema, table.name, g);
    // An index-backed constraint is renamed through its index, which renames the constraint too:
    // Citus renames a distributed table's indexes on every shard, and refuses RENAME CONSTRAINT.
    await client.query(
      INDEX_BACKED.includes(g.label)
        ? `ALTER INDEX ${ident(table.schema)}.${ident(conname)} RENAME TO ${ident(name)}`
        : `ALTER TABLE ${ident(table.schema)}.${ident(table.name)} RENAME CONSTRAINT ${ident(conname)} TO ${ident(name)}`,
    );
  }
}

async function freeName(client: Client, schema: string, table: string, g: GeneratedName): Promise<string> {
  for (let pass = 0; ; pass++) {
    const candidate = objectName(table, g.columns, g.label + (pass === 0 ? '' : String(pass)));
    const { rowCount } = await client.query(
      `SELECT 1 FROM pg_constraint WHERE conname = $2 AND connamespace = $1::regnamespace
       UNION ALL SELECT 1 FROM pg_class WHERE relname = $2 AND relnamespace = $1::regnamespace`,
      [ident(schema), candidate],
    );
    if (rowCount === 0) return candidate;
  }
}
