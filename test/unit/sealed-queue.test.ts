// SealedQueue (src/core/queue/sealed-queue.ts with entry-document.ts and ledger.ts): what a queue row
// proves, over an in-memory table (test/support/fake-queue-table.ts) written as another account would
// write the real one: plain columns changed, a document copied into another row, an older document
// put back. Each host's ledger is its own (MemoryLedger here; FileLedger's files are tested below).
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { QueueSpec } from '../../src/core/engine/ports/queue.js';
import { FileLedger, judge } from '../../src/core/queue/ledger.js';
import { SealedQueue } from '../../src/core/queue/sealed-queue.js';
import { FakeQueueTable, MemoryLedger } from '../support/fake-queue-table.js';

const spec: QueueSpec = { stage: 'backfill', table: 'shop.accounts', args: ['--set', 'balance = balance + 100'], addedBy: 'ops@host' };

function queue() {
  const table = new FakeQueueTable();
  const warnings: string[] = [];
  return { table, warnings, store: new SealedQueue(table, new MemoryLedger(), (line) => warnings.push(line)) };
}

describe('a queue row is what its seal says', () => {
  it('goes by the sealed values when a plain column was changed, names the column, and writes it right at the next change', async () => {
    const { table, store } = queue();
    const id = await store.add(spec);
    expect(await store.claim(id, 'r1', 30)).toBe(true);
    expect(await store.finish(id, 'r1', 'complete', { attempts: [] })).toBe(true);
    table.tamper(id, { state: 'queued', request: 'cutover', leaseUntil: '2099-01-01T00:00:00.000Z' });
    const row = (await store.get(id))!;
    expect(row).toMatchObject({ state: 'complete', request: null, leaseUntil: null, changed: ['state', 'request', 'lease_until'] });
    expect(row.refused).toBeUndefined();
    expect(await store.claim(id, 'r2', 30)).toBe(false);
    expect(await store.request(id, 'cancel')).toBe(false);
  });

  it('refuses a document copied into another row, claims nothing of it, and fails it sealed with its spec unproven', async () => {
    const { table, store } = queue();
    const id = await store.add(spec);
    const copy = table.put({ spec: { ...spec, table: 'shop.other' } });
    table.tamper(copy, { sealed: table.raw(id).sealed });
    const row = (await store.get(copy))!;
    expect(row.refused).toBe(
      `refusing queue entry ${copy}: its document was sealed for entry #${id} of fake.shadowcut_queue, and copied here; nothing in it was used`,
    );
    expect(row.spec.unproven).toBe(row.refused);
    expect(await store.claim(copy, 'r1', 30)).toBe(false);
    expect(await store.refuse(copy, 'failed', 'never run', true)).toBe('failed');
    const failed = (await store.get(copy))!;
    expect(failed).toMatchObject({ state: 'failed', status: { lastError: 'never run' } });
    expect(failed.refused).toBeUndefined();
    expect(failed.spec.unproven).toBe(row.refused);
    // Retried, it would be sealed queued: refused, as any spec shadowcut did not write.
    await expect(store.transition(copy, ['failed'], 'queued', undefined, { ...failed.spec, postponed: undefined })).rejects.toThrow(
      /^refusing to keep a queue entry shadowcut did not write \(refusing queue entry/,
    );
  });

  it('refuses an older document put back on a host that saw a newer one, and keeps a completed entry complete', async () => {
    const { table, store } = queue();
    const id = await store.add(spec);
    const queued = table.raw(id);
    expect(await store.claim(id, 'r1', 30)).toBe(true);
    expect(await store.finish(id, 'r1', 'complete', { attempts: [] })).toBe(true);
    table.tamper(id, queued);
    const row = (await store.get(id))!;
    expect(row.refused).toMatch(/^refusing queue entry \d+: an older document of it was put back \(generation 1; this host has seen generation 3, complete\)/);
    // The spec is shadowcut's and this row's; only its state is not.
    expect(row.spec.unproven).toBeUndefined();
    expect(await store.claim(id, 'r2', 30)).toBe(false);
    // A host that never saw the later documents cannot tell (docs/security.md says so).
    expect((await new SealedQueue(table, new MemoryLedger()).get(id))!.refused).toBeUndefined();
    expect(await store.refuse(id, 'failed', 'put back', true)).toBe('complete');
    expect((await store.get(id))!).toMatchObject({ state: 'complete', generation: 4 });
  });

  it('refuses a document of a generation it saw with another seal: an older one was put back and written over', async () => {
    const { table, store } = queue();
    const id = await store.add(spec);
    const queued = table.raw(id);
    expect(await store.claim(id, 'r1', 30)).toBe(true);
    table.tamper(id, queued);
    // Another host, which never saw the claim, writes over the document put back: generation 2 again.
    expect(await new SealedQueue(table, new MemoryLedger()).request(id, 'cancel')).toBe(true);
    expect((await store.get(id))!.refused).toMatch(/its document of generation 2 is not the one this host saw at that generation/);
  });

  it("lets the holder of a running entry write its claim back over an older document, but not over another runner's newer claim", async () => {
    const { table, store, warnings } = queue();
    const id = await store.add(spec);
    expect(await store.claim(id, 'r1', 30)).toBe(true);
    const claimed = table.raw(id);
    expect(await store.renew(id, 'r1', 30, { attempts: [], phase: 'copy' })).toBe(true);
    table.tamper(id, claimed);
    expect(await store.renew(id, 'r1', 30, { attempts: [], phase: 'copy' })).toBe(true);
    expect(warnings).toEqual([
      expect.stringMatching(/^#\d+: refusing queue entry \d+: an older document of it was put back .*; writing this runner's claim back$/),
    ]);
    expect((await store.get(id))!).toMatchObject({ state: 'running', claimedBy: 'r1', generation: 4, status: { phase: 'copy' } });
    // A forged lease on a plain column: the holder's renewal writes the sealed one back.
    table.tamper(id, { leaseUntil: '2000-01-01T00:00:00.000Z', claimedBy: 'thief' });
    expect((await store.get(id))!.claimedBy).toBe('r1');
    // Another runner's claim of a newer generation is a real takeover.
    table.put({ ...(await store.get(id))!, claimedBy: 'r2' });
    expect(await store.renew(id, 'r1', 30, { attempts: [] })).toBe(false);
  });
});

describe("the ledger's files", () => {
  it('keeps the newest document seen, in files of the running user only, and refuses a ledger others can write', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'shadowcut-ledger-'));
    try {
      const ledger = new FileLedger(path.join(dir, 'queue-ledger'));
      expect(judge(ledger, 'k', { generation: 2, seal: 'v1:b', state: 'running' })).toBeNull();
      expect(judge(ledger, 'k', { generation: 1, seal: 'v1:a', state: 'queued' })).toMatch(/^an older document of it was put back/);
      expect(new FileLedger(path.join(dir, 'queue-ledger')).latest('k')).toEqual({ generation: 2, seal: 'v1:b', state: 'running' });
      expect(statSync(path.join(dir, 'queue-ledger')).mode & 0o777).toBe(0o700);
      expect(readdirSync(path.join(dir, 'queue-ledger'))).toEqual(['k']);
      chmodSync(path.join(dir, 'queue-ledger', 'k'), 0o666);
      expect(() => new FileLedger(path.join(dir, 'queue-ledger')).latest('k')).toThrow(/can be read or written by other users: chmod 600 it/);
      chmodSync(path.join(dir, 'queue-ledger'), 0o777);
      expect(() => new FileLedger(path.join(dir, 'queue-ledger')).latest('k')).toThrow(/can be read or written by other users: chmod 700 it/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
