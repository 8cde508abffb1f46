import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeBuffer } from '../src/core/migrate/capture/change-buffer.js';
import type { ConsistentView, Engine } from '../src/core/engine/types.js';
import type { SampleProbe } from '../src/core/engine/ports/preflight.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { POOL_MAX } from '../src/engines/postgres/server/connect.js';
import { pgUrl } from './support/pg.js';
import { catchUpFrom, noSetup } from './support/run.js';

// Issue 52 item 7: a resumed set sat for 300 s with the application's UPDATEs queued. Each member's
// checksum view takes four pooled connections, locks its original in SHARE mode and catches up; the
// catch-up's fence took a fifth from the pool, which waits for a free one without end. With the pool
// full of other views (a set's members opening theirs together), the view waited, its lock held.
// Choreographed: other views (and sample probes) are opened and held first, so the last view takes
// the pool's last four connections; then the view must open, and a writer must get through.
let db: pg.Pool;
let engine: Engine;

beforeAll(async () => {
  db = new pg.Pool({ connectionString: pgUrl() });
  engine = await createPostgresEngine(pgUrl());
});

afterAll(async () => {
  await engine.close();
  await db.query('DROP TABLE IF EXISTS vp_t, vp_t__new, vp_t__state, vp_t__hb CASCADE');
  await db.end();
});

describe('PostgreSQL: a checksum view with the pool full', () => {
  it('catches up on its own session: the view opens and a writer waits for nothing', async () => {
    await db.query('DROP TABLE IF EXISTS vp_t, vp_t__new CASCADE');
    await db.query('CREATE TABLE vp_t (id int PRIMARY KEY, v int NOT NULL)');
    await db.query('INSERT INTO vp_t SELECT g, g FROM generate_series(1, 1000) g');
    const migration = await engine.prepare({ url: pgUrl(), table: 'vp_t', alter: 'ADD COLUMN x int', capture: 'stream' });
    await migration.createShadow();
    const buffer = new ChangeBuffer();
    const stream = await migration.changes.open(buffer, undefined, noSetup);
    buffer.advance(stream.start);
    const views: ConsistentView[] = [];
    const probes: SampleProbe[] = [];
    let last: Promise<ConsistentView> | null = null;
    try {
      await migration.copyRange({ after: null, upTo: null });
      await migration.keylessShadow?.build();
      const catchUp = catchUpFrom(migration, stream, buffer);
      // The pool filled but for four connections: open views keep three each (the lock's goes back
      // once the snapshot is taken), and a sample probe keeps one.
      const spare = POOL_MAX - 4;
      for (let i = 0; i < Math.floor(spare / 3); i++) views.push(await migration.consistentView(catchUp, 2000));
      for (let i = 0; i < spare % 3; i++) probes.push(await migration.openSampleProbe());
      last = migration.consistentView(catchUp, 2000);
      const opened = await Promise.race([last.then(() => 'opened'), new Promise((r) => setTimeout(() => r('still waiting after 10 s'), 10_000))]);
      expect(opened).toBe('opened');
      // No SHARE lock is left behind: a writer goes through at once.
      const writer = await db.connect();
      try {
        await writer.query(`SET statement_timeout = '5s'`);
        await writer.query('UPDATE vp_t SET v = v + 1 WHERE id = 1');
      } finally {
        writer.release();
      }
    } finally {
      for (const view of views) await view.close();
      for (const probe of probes) await probe.close();
      // Once the others let their connections go, a view that waited opens: closed too, or the pool never ends.
      if (last) await (await last).close();
      await stream.stop();
      await migration.cleanup({ dropOld: false, cutOver: false });
    }
  }, 60_000);
});
