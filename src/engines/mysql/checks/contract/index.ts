import type { Check } from '../../../../core/engine/checks/check.js';
import type { ContractContext } from './context.js';
import { digests } from './digests.js';
import { foreignKeys } from './foreign-keys.js';
import { generatedColumns } from './generated-columns.js';
import { indexes } from './indexes.js';
import { routines } from './routines.js';
import { triggers } from './triggers.js';
import { views } from './views.js';

/** Dependencies the server enforces first (never overridden), then what statistics and text saw (--force may override). */
export const contractChecks: readonly Check<ContractContext>[] = [views, generatedColumns, triggers, foreignKeys, indexes, routines, digests];
