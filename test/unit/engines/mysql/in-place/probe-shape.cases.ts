// The in-place classifier's probe (src/engines/mysql/in-place/probe-shape.ts): a clause as it must read
// on the probe, whose foreign keys have names of their own, and the server's words turned back.
import { describe, expect, it } from 'vitest';
import { asTable, onProbe } from '../../../../../src/engines/mysql/in-place/probe-shape.js';

// As copyForeignKeys names them: a stem and a number, in the original's order.
const stem = 'shadowcut_probe_0123456789ab';
const keys = new Map([
  ['fk_parent', `${stem}_1`],
  ['fk`odd', `${stem}_2`],
]);

describe('onProbe', () => {
  it("renames a dropped foreign key to the probe's, quoted or not, whatever the case", () => {
    expect(onProbe('DROP FOREIGN KEY FK_Parent', keys)).toBe(`DROP FOREIGN KEY \`${stem}_1\``);
    expect(onProbe('drop constraint if exists `fk``odd`', keys)).toBe(`drop constraint if exists \`${stem}_2\``);
  });

  it('leaves any other clause, and an unknown name, as written', () => {
    expect(onProbe('DROP FOREIGN KEY other', keys)).toBe('DROP FOREIGN KEY other');
    expect(onProbe('DROP INDEX fk_parent', keys)).toBe('DROP INDEX fk_parent');
    expect(onProbe('ADD COLUMN n INT', keys)).toBe('ADD COLUMN n INT');
  });
});

describe('asTable', () => {
  it("speaks of the table and its own key names, not the probe's", () => {
    expect(asTable(`Cannot drop index 'x': needed in a foreign key constraint '${stem}_1' of \`db\`.\`t__pp\``, 't__pp', keys, 'orders')).toBe(
      "Cannot drop index 'x': needed in a foreign key constraint 'fk_parent' of `db`.`orders`",
    );
  });

  it('does not take the tenth key for the first one followed by a 0', () => {
    const ten = new Map(Array.from({ length: 10 }, (_, i) => [`fk_${String.fromCharCode(97 + i)}`, `${stem}_${i + 1}`]));
    expect(asTable(`constraint '${stem}_10' fails`, 't__pp', ten)).toBe("constraint 'fk_j' fails");
  });
});
