// The trigger capture's SQL (src/engines/mysql/capture/trigger/capture-triggers.ts over capture-target.ts):
// what each trigger logs, on which table under which names, and which CREATE in the binlog is a window's own.
import { describe, expect, it } from 'vitest';
import { captureBody, isPrelockCreate, prelockCreate } from '../../../../../../src/engines/mysql/capture/trigger/capture-triggers.js';
import { forwardCapture, reverseCaptureOnShadow } from '../../../../../../src/engines/mysql/capture/trigger/capture-target.js';
import type { MysqlPlan } from '../../../../../../src/engines/mysql/schema/plan.js';

const plan = {
  database: 'shop',
  table: 'orders',
  shadow: 'orders__new',
  old: 'orders__old',
  log: 'orders__log',
  keyColumns: ['id', 'Line No'],
  shadowKeyColumns: ['id', 'line'],
  original: { columns: [], indexes: [] },
  shadowShape: { columns: [], indexes: [] },
} as unknown as MysqlPlan;

describe('captureBody', () => {
  const at = forwardCapture(plan);

  it('logs the new key of an insert and the old key of a delete', () => {
    expect(captureBody(at, 'INSERT')).toBe('INSERT INTO `shop`.`orders__log` (`id`, `Line No`) VALUES (NEW.`id`, NEW.`Line No`)');
    expect(captureBody(at, 'DELETE')).toBe('INSERT INTO `shop`.`orders__log` (`id`, `Line No`) VALUES (OLD.`id`, OLD.`Line No`)');
  });

  it('logs the old key of an update, and the new one too when the key moved (NULL-safe)', () => {
    expect(captureBody(at, 'UPDATE')).toBe(
      'BEGIN INSERT INTO `shop`.`orders__log` (`id`, `Line No`) VALUES (OLD.`id`, OLD.`Line No`); ' +
        'IF NOT (OLD.`id` <=> NEW.`id`) OR NOT (OLD.`Line No` <=> NEW.`Line No`) THEN INSERT INTO `shop`.`orders__log` (`id`, `Line No`) VALUES (NEW.`id`, NEW.`Line No`); END IF; END',
    );
  });
});

describe('capture targets', () => {
  it("follows the original under the run's names, moved to the old table at the swap", () => {
    expect(forwardCapture(plan)).toMatchObject({
      table: 'orders',
      log: 'orders__log',
      triggers: { INSERT: 'orders__ti', UPDATE: 'orders__tu', DELETE: 'orders__td' },
      movedTo: ['orders__old'],
    });
  });

  it("puts a revert window's capture on the shadow, by the shadow's key names, with prelock triggers on the original", () => {
    expect(reverseCaptureOnShadow(plan)).toMatchObject({
      table: 'orders__new',
      keyColumns: ['id', 'line'],
      log: 'orders__rlog',
      triggers: { INSERT: 'orders__rti' },
      movedTo: ['orders'],
      prelock: { table: 'orders', movedTo: ['orders__old'], triggers: { DELETE: 'orders__rpd' } },
    });
  });
});

describe('isPrelockCreate', () => {
  const own = prelockCreate('shop', 'orders', 'orders__rpu', 'UPDATE', 'orders__rlog');

  it('writes a branch never taken that names the log', () => {
    expect(own).toBe(
      'CREATE TRIGGER `shop`.`orders__rpu` AFTER UPDATE ON `shop`.`orders` FOR EACH ROW IF FALSE THEN INSERT INTO `shop`.`orders__rlog` (seq) VALUES (NULL); END IF',
    );
  });

  it('knows its own CREATE as the binlog shows it, with the DEFINER the server writes in', () => {
    expect(isPrelockCreate(own, 'shop', 'orders')).toBe(true);
    expect(isPrelockCreate(own.replace('CREATE TRIGGER', 'CREATE DEFINER=`app user`@`%` TRIGGER'), 'shop', 'orders')).toBe(true);
  });

  it("does not take another body, event or table under the window's names for its own", () => {
    expect(isPrelockCreate(own.replace('IF FALSE', 'IF TRUE'), 'shop', 'orders')).toBe(false);
    expect(isPrelockCreate(own.replace('AFTER UPDATE', 'AFTER DELETE'), 'shop', 'orders')).toBe(false);
    expect(isPrelockCreate(own, 'shop', 'other')).toBe(false);
  });
});
