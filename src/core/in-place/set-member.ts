import { UserError } from '../engine/errors.js';
import type { EngineInPlace } from '../engine/ports/in-place.js';
import type { MigrationRequest } from '../engine/types.js';
import type { AlterClassification } from '../engine/ports/in-place.js';

/**
 * A table's classification when it is one of a set (several tables, one cut-over). The server may
 * refuse a member's ALTER on the table alone where the set makes it: MariaDB cannot change the type
 * of a column a foreign key uses, whatever foreign_key_checks says, while a set widens a parent's key
 * and its children's together and rebuilds the key between the new tables. Such a member takes the
 * copy, whose preparation judges the ALTER again with the set in view, and refuses it in one line if
 * it fails there too. Alone, a refusal stands.
 */
export async function classifyMember(engine: EngineInPlace, request: MigrationRequest): Promise<AlterClassification> {
  try {
    return await engine.classifyAlter(request.table, request.alter);
  } catch (error) {
    if (!request.set?.length || !(error instanceof UserError)) throw error;
    return { parts: [], path: 'copy', why: `its ALTER cannot be made on the table alone (${error.message})`, steps: [] };
  }
}
