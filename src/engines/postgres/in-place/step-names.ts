import { UserError } from '../../../core/engine/errors.js';
import { ident } from '../server/sql.js';
import type { Client } from '../server/connect.js';
import type { Probed } from './in-place-steps.js';

/** The server's limit on a name (NAMEDATALEN - 1). */
const MAX_NAME = 63;

/**
 * The probe has the table's CHECKs and indexes but not its foreign keys, and lives in pg_temp, not
 * in the table's schema: a name free there can be taken on the real table (a foreign key) or in its
 * schema (another table's index). The step that adds it would then fail, and its undo (DROP ...
 * IF EXISTS by name) would drop what the user had. So each name the steps add is checked on the
 * real table: one the user wrote is refused as the native ALTER refuses it; one the server chose is
 * chosen again as the server would on the real table (the name with 1, 2, ... appended).
 */
export async function claimFreeNames(client: Client, schema: string, name: string, oid: string, probed: Probed[]): Promise<void> {
  const taken = async (candidate: string, relation: boolean) =>
    (
      await client.query(
        `SELECT 1 FROM pg_constraint WHERE conrelid = $1 AND conname = $2
        UNION ALL SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE $3 AND n.nspname = $4 AND c.relname = $2`,
        [oid, candidate, relation, schema],
      )
    ).rows.length > 0;
  const claimed = new Set<string>();
  const free = async (wanted: string, explicit: boolean, relation: boolean): Promise<string> => {
    if (!claimed.has(wanted) && !(await taken(wanted, relation))) {
      claimed.add(wanted);
      return wanted;
    }
    if (explicit) throw new UserError(`the ALTER fails: ${relation ? `relation "${wanted}"` : `constraint "${wanted}" for relation "${name}"`} already exists`);
    for (let n = 1; ; n++) {
      const candidate = `${wanted.slice(0, MAX_NAME - String(n).length)}${n}`;
      if (!claimed.has(candidate) && !(await taken(candidate, relation))) {
        claimed.add(candidate);
        return candidate;
      }
    }
  };
  for (const p of probed) {
    const explicit = p.kind.kind === 'add-foreign-key' ? p.kind.name !== null : /^ADD\s+CONSTRAINT\b/i.test(p.part.clause);
    if (p.index) {
      const chosen = await free(p.index.name, explicit, true);
      if (chosen !== p.index.name)
        p.index = { ...p.index, name: chosen, create: p.index.create.replace(/^CREATE UNIQUE INDEX \S+/, `CREATE UNIQUE INDEX ${ident(chosen)}`) };
    } else if (p.constraint && p.part.class === 'validate-later') {
      p.constraint = await free(p.constraint, explicit, false);
    }
  }
}
