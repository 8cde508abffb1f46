// Where a table's files live (src/engines/mysql/copy/data-directory.ts): the clause read from SHOW
// CREATE TABLE for the shadow, and a partitioned table's own directories refused.
import { describe, expect, it } from 'vitest';
import { dataDirectoryOf } from '../../../../../src/engines/mysql/copy/data-directory.js';

const TABLE = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `note` varchar(20) DEFAULT 'a DATA DIRECTORY=''x''',\n  PRIMARY KEY (`id`)\n)";

describe('dataDirectoryOf', () => {
  it("takes the clause from the table options' line only, quotes and all", () => {
    expect(dataDirectoryOf(`${TABLE} ENGINE=InnoDB DEFAULT CHARSET=latin1 DATA DIRECTORY='/disk/it''s/'`, 'db.t')).toBe("DATA DIRECTORY='/disk/it''s/'");
  });

  it('is null for a table in the data directory, whatever a column default says', () => {
    expect(dataDirectoryOf(`${TABLE} ENGINE=InnoDB DEFAULT CHARSET=latin1`, 'db.t')).toBeNull();
  });

  it('refuses partitions with directories of their own, which a copy made LIKE the table would lose', () => {
    const partitioned = `${TABLE} ENGINE=InnoDB\n PARTITION BY RANGE (\`id\`)\n(PARTITION \`p0\` VALUES LESS THAN (10) DATA DIRECTORY = '/disk/p0/' ENGINE = InnoDB)`;
    expect(() => dataDirectoryOf(partitioned, 'db.t')).toThrow(/db\.t's partitions keep their files in a DATA DIRECTORY of their own/);
  });
});

describe('dataDirectoryOf, around comments', () => {
  it('reads past a table comment that says DATA DIRECTORY', () => {
    expect(dataDirectoryOf(`${TABLE} ENGINE=InnoDB COMMENT='moved: DATA DIRECTORY=''/x/'''`, 'db.t')).toBeNull();
    expect(dataDirectoryOf(`${TABLE} ENGINE=InnoDB DATA DIRECTORY='/d/' COMMENT='DATA DIRECTORY=''/x/'''`, 'db.t')).toBe("DATA DIRECTORY='/d/'");
  });
});
