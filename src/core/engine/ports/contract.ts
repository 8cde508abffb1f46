import type { Contraction, ContractRequest } from '../../contract/types.js';

/** `shadowcut contract`: the engine finds what a drop takes with it and makes it; core decides whether it may. */
export interface EngineContract {
  /** `shadowcut contract`: a column, index or the table to drop, with its checks (core/contract); throws UserError for bad input. */
  prepareContract(request: ContractRequest): Promise<Contraction>;
}
