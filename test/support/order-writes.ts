/**
 * The application of the set tests (several tables, one cut-over): orders come and go with their
 * items and payments, items change their own key, and each transaction is made on every database
 * given, one after the other, so a twin ends with the same rows.
 */
export type Statement = [string, unknown[]];

const LCG = (n: number) => (n * 1103515245 + 12345) % 2147483648;

/** One drawn transaction, in MySQL's placeholders (`?`); PostgreSQL's are made from them. */
function transaction(n: number, id: number, dialect: 'mysql' | 'postgres', cascade: boolean): Statement[] {
  const pick = 1 + (n % 20000);
  const appended = dialect === 'mysql' ? 'CONCAT(note, ?)' : 'note || ?';
  const statements: Statement[][] = [
    [
      ['INSERT INTO orders (id, note) VALUES (?, ?)', [id, `new ${id}`]],
      ['INSERT INTO order_items (id, order_id, qty) VALUES (?, ?, 1), (?, ?, 2)', [id, id, id + 5_000_000, id]],
      ['INSERT INTO payments (id, order_id, amount) VALUES (?, ?, 12.34)', [id, id]],
    ],
    [
      ['UPDATE order_items SET qty = qty + 1 WHERE order_id = ?', [pick]],
      ['UPDATE payments SET amount = amount + 0.01 WHERE order_id = ?', [pick]],
    ],
    // Deletes racing the copy: an order goes with everything that references it (with cascading
    // keys, the server takes its items and payments, with no row event or trigger of theirs).
    cascade
      ? [['DELETE FROM orders WHERE id = ?', [pick]]]
      : [
          ['DELETE FROM order_items WHERE order_id = ?', [pick]],
          ['DELETE FROM payments WHERE order_id = ?', [pick]],
          ['DELETE FROM orders WHERE id = ?', [pick]],
        ],
    [['UPDATE order_items SET id = id + 10000000 WHERE id = ?', [pick * 2]]],
    [[`UPDATE orders SET note = ${appended} WHERE id = ?`, ['.', pick]]],
  ];
  const chosen = statements[n % statements.length];
  if (dialect === 'mysql') return chosen;
  return chosen.map(([sql, values]) => {
    let k = 0;
    return [sql.replace(/\?/g, () => `$${++k}`), values];
  });
}

/** The writers of `orderWriters`: the transactions committed so far (on every database), and `stop`. */
export interface OrderWriters {
  committed: () => number;
  stop: () => Promise<number>;
}

/**
 * Two writers until `stop`, each transaction through `commit` on each database in turn. A writer's
 * failure ends the load and is thrown by `stop`; `stop` gives the transactions committed.
 */
export function orderWriters(
  databases: number,
  dialect: 'mysql' | 'postgres',
  commit: (database: number, statements: Statement[]) => Promise<void>,
  cascade = false,
): OrderWriters {
  let next = 1_000_000;
  let stopped = false;
  let committed = 0;
  const loop = async (seed: number) => {
    for (let n = seed; !stopped;) {
      n = LCG(n);
      const statements = transaction(n, next++, dialect, cascade);
      for (let d = 0; d < databases; d++) await commit(d, statements);
      committed++;
    }
  };
  const running = Promise.all([loop(7), loop(11)]).then(
    () => null,
    (error: unknown) => {
      stopped = true;
      return error;
    },
  );
  return {
    committed: () => committed,
    stop: async () => {
      stopped = true;
      const failed = await running;
      if (failed) throw failed;
      return committed;
    },
  };
}
