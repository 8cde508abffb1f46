import { UserError } from '../../../core/engine/errors.js';
import { helperNames } from '../server/helper-names.js';
import type { Client } from '../server/connect.js';
import type { PgDetail } from './plan.js';

/**
 * A resumed run writes into the shadow the interrupted run made, so it must still be that run's:
 * owned by the migrating role (only the owner, or a superuser, can add a trigger, rule or policy or
 * hand it to another role), with no rule, policy or row security, and no trigger but a revert
 * window's capture. Another role that dropped the shadow while the run was down and made its own
 * under the name, with a trigger that runs as whoever writes into it, would otherwise have the copy
 * run its code with the migrating role's rights. Every table of a partitioned shadow is checked.
 */
export async function checkResumedShadow(client: Client, d: PgDetail): Promise<void> {
  const names = [d.shadow, ...(d.partitions ?? []).map((p) => p.shadow)];
  const ours = helperNames(d.schema, d.name).reverseCapture.captureTriggers;
  const { rows } = await client.query(
    `SELECT c.relname AS name,
            c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS ours,
            pg_get_userbyid(c.relowner) AS owner, c.relrowsecurity OR c.relforcerowsecurity AS rls,
            (SELECT count(*) FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN') AS rules,
            (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
            (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND NOT t.tgname = ANY ($3::text[])) AS triggers
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = ANY ($2::text[])`,
    [d.schema, names, ours],
  );
  const found = new Map(rows.map((r: Record<string, unknown>) => [String(r.name), r]));
  for (const name of names) {
    const r = found.get(name);
    const what = `${d.schema}.${name}`;
    if (!r) throw new UserError(`cannot resume: the shadow table ${what} is gone; run shadowcut cleanup and start again`);
    const problems = [
      r.ours === true || r.ours === 't' ? null : `it is owned by ${String(r.owner)}, not by this role`,
      Number(r.rules) > 0 ? 'it has rules' : null,
      Number(r.policies) > 0 || r.rls === true || r.rls === 't' ? 'it has row security or policies' : null,
      Number(r.triggers) > 0 ? 'it has triggers shadowcut did not make' : null,
    ].filter((p) => p !== null);
    if (problems.length > 0) {
      throw new UserError(
        `cannot resume: the shadow table ${what} is not the one the interrupted run made (${problems.join(', ')}); nothing was written into it`,
      );
    }
  }
}
