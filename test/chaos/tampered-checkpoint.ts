/**
 * A seed killed mid-run sometimes finds its checkpoint rewritten before the resume, as an account
 * that can write `<table>__state` but holds no state key would rewrite it: the seal kept, the body
 * changed (a statement for the run to make). The resume must be refused in one line, and nothing of
 * the rewritten text run; the checkpoint is then put back as shadowcut wrote it, for the resume the
 * seed makes next (docs/invariants.md, invariant 19).
 */
import type { ChaosDb } from './database.js';

/** The text as a literal of the engine's, whatever it holds. */
function literal(kind: ChaosDb['kind'], text: string): string {
  const hex = Buffer.from(text, 'utf8').toString('hex');
  return kind === 'mysql' ? `CONVERT(X'${hex}' USING utf8mb4)` : `convert_from(decode('${hex}', 'hex'), 'UTF8')`;
}

/** A failure reason, or null when the resume was refused as it must be (or there was no checkpoint to rewrite). */
export async function tamperedResumeRefused(
  db: ChaosDb,
  table: string,
  resume: () => Promise<{ code: number | null; stderr: string }>,
): Promise<string | null> {
  const state = `${table}__state`;
  const session = await db.session();
  try {
    let rows: unknown[][];
    try {
      rows = await session.query(`SELECT checkpoint FROM ${state} WHERE id = 1`);
    } catch {
      return null; // no checkpoint table: killed before it was made, or after the cleanup dropped it
    }
    if (rows.length === 0) return null;
    const original = String(rows[0][0]);
    const envelope = JSON.parse(original) as { seal: string; body: string };
    const body = JSON.parse(envelope.body) as { plan: { detail: Record<string, unknown> } };
    body.plan.detail.tampered = `CREATE TABLE ${table}_pwned (x INT)`;
    const tampered = JSON.stringify({ seal: envelope.seal, body: JSON.stringify(body) });
    await session.query(`UPDATE ${state} SET checkpoint = ${literal(db.kind, tampered)} WHERE id = 1`);
    try {
      const r = await resume();
      const lines = r.stderr.trim().split('\n');
      if (r.code !== 2 || lines.length !== 1 || !/refusing the checkpoint of \S+: its seal does not match/.test(r.stderr)) {
        return `a resume from a rewritten checkpoint was not refused in one line (exit ${r.code}): ${r.stderr.slice(0, 400)}`;
      }
    } finally {
      await session.query(`UPDATE ${state} SET checkpoint = ${literal(db.kind, original)} WHERE id = 1`);
    }
    const made = await session.query(
      db.kind === 'mysql'
        ? `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '${table}_pwned'`
        : `SELECT COUNT(*) FROM pg_class WHERE relname = '${table}_pwned'`,
    );
    return Number(made[0][0]) === 0 ? null : 'the rewritten checkpoint ran its statement';
  } finally {
    await session.close();
  }
}
