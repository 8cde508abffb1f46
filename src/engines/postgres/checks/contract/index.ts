import type { Check } from '../../../../core/engine/checks/check.js';
import type { ContractContext } from './context.js';
import { constraints } from './constraints.js';
import { functions } from './functions.js';
import { indexGuarantees } from './index-guarantees.js';
import { statements } from './statements.js';
import { triggers } from './triggers.js';
import { views } from './views.js';

/** Dependencies the catalog records first (never overridden), then what statistics and text saw (--force may override). */
export const contractChecks: readonly Check<ContractContext>[] = [views, constraints, indexGuarantees, triggers, functions, statements];
