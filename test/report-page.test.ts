import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../src/operator/report.js';
import { databases, useDatabase } from './support/fixture.js';
import { freePort } from './support/free-port.js';

const ALTER = { mysql: 'ADD COLUMN note VARCHAR(40) NULL', postgres: 'ADD COLUMN note varchar(40)' } as const;
const ROWS = 30_000;
const servers = fileURLToPath(new URL('../scripts/servers.sh', import.meta.url));

let browser: Browser;

beforeAll(async () => {
  // Debian's Chromium, installed by the project's script when the machine has none. Not a
  // synchronous call: an install blocks for minutes on a fresh machine, and a worker blocked past a
  // minute misses vitest's own messages (the fresh-clone CI of 545bf16 failed so, every test passed).
  const { stdout } = await promisify(execFile)(servers, ['chromium'], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const executablePath = stdout.trim();
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
}, 600_000);

afterAll(async () => {
  await browser?.close();
});

/** What a chart carries for readers (and for this test): its points, its highest value and its labels. */
async function chart(page: Page, id: string) {
  const svg = page.locator(`svg[data-chart="${id}"]`);
  return {
    points: Number(await svg.getAttribute('data-points')),
    max: await svg.getAttribute('data-max'),
    path: await svg.locator('path.series').getAttribute('d'),
    labels: await svg.locator('g.marker text').allTextContents(),
  };
}

describe.each(databases)("the run's page on $name", ({ kind, open }) => {
  const db = useDatabase(open, 'page_t');
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-page-'));
    await db.drop('page_t');
    await db.query('CREATE TABLE page_t (id INT PRIMARY KEY, v INT NOT NULL)');
    await db.query(`INSERT INTO page_t SELECT g, g FROM (${db.series(ROWS)}) s`);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("draws plan's estimate, as the plan timed it", async () => {
    const planDir = await mkdtemp(path.join(tmpdir(), 'shadowcut-plan-page-'));
    try {
      const planned = await db.cliAsync([
        'plan',
        '--url',
        '$URL',
        '--table',
        'page_t',
        '--alter',
        ALTER[kind],
        '--force-copy',
        '--json',
        '--report-dir',
        planDir,
      ]);
      expect(planned.code, planned.stderr).toBe(0);
      const { detail } = JSON.parse(planned.stdout) as { detail: { estimate: { totalMs: number; copyMs: number } } };
      const html = (await readdir(planDir)).find((f) => f.endsWith('.html'));
      expect(planned.stderr).toContain(`plan page: ${path.join(planDir, html!)}`);
      const page = await browser.newPage();
      try {
        await page.goto(pathToFileURL(path.join(planDir, html!)).href);
        expect(await page.locator('main').getAttribute('data-path')).toBe('copy');
        const estimate = page.locator('svg[data-chart="estimate"]');
        expect(Number(await estimate.getAttribute('data-total-ms'))).toBe(Math.round(detail.estimate.totalMs));
        expect(Number(await estimate.locator('g[data-phase="copy"]').getAttribute('data-ms'))).toBe(Math.round(detail.estimate.copyMs));
        expect(await estimate.locator('g[data-phase="verification"] text').textContent()).toMatch(/^verification: \d+ s$/);
      } finally {
        await page.close();
      }
    } finally {
      await rm(planDir, { recursive: true, force: true });
    }
  });

  it('is live at the metrics port while the run goes on, and report.html draws the run with its own figures', async () => {
    const port = await freePort();
    const run = db.cliAsync([
      'migrate',
      '--url',
      '$URL',
      '--table',
      'page_t',
      '--alter',
      ALTER[kind],
      '--force-copy',
      '--execute',
      // Paced, so the copy lasts long enough (15 s) for the page to be watched refreshing itself.
      '--max-rows-per-sec',
      '2000',
      '--metrics-port',
      String(port),
      '--report-dir',
      dir,
    ]);
    let ended = false;
    const writes = (async () => {
      const session = await db.session();
      try {
        for (let i = 0; !ended; i++) await session.query(`UPDATE page_t SET v = v + 1 WHERE id = ${1 + ((i * 7919) % ROWS)}`);
      } finally {
        session.release();
      }
    })();

    const page = await browser.newPage();
    try {
      // The live page: served at /, and it updates itself from the run while the run goes on.
      await expect
        .poll(
          () =>
            page.goto(`http://127.0.0.1:${port}/`).then(
              (r) => r?.status() ?? 0,
              () => 0,
            ),
          { timeout: 30_000 },
        )
        .toBe(200);
      const first = Number(await page.locator('main').getAttribute('data-samples'));
      await page.waitForFunction(() => Number(document.documentElement.dataset.refreshes ?? 0) >= 2, null, { timeout: 20_000 });
      expect(await page.locator('main').getAttribute('data-outcome')).toBe('running');
      expect(Number(await page.locator('main').getAttribute('data-samples'))).toBeGreaterThan(first);
      const rows = await chart(page, 'rows');
      expect(rows.points).toBeGreaterThan(1);
      expect(Number(rows.max)).toBeGreaterThan(0);
    } finally {
      await page.close();
    }

    const result = await run;
    ended = true;
    await writes;
    expect(result.code, result.stderr).toBe(0);

    const files = await readdir(dir);
    const json = files.find((f) => f.endsWith('.json'));
    const html = files.find((f) => f.endsWith('.html'));
    expect(html, files.join(', ')).toBeDefined();
    const report = JSON.parse(await readFile(path.join(dir, json!), 'utf8')) as Report;
    expect(report.cutoverLockedMs).not.toBeNull();
    const samples = report.series.samples;
    expect(samples.length).toBeGreaterThan(3);

    const done = await browser.newPage();
    try {
      await done.goto(pathToFileURL(path.join(dir, html!)).href);
      expect(await done.locator('main').getAttribute('data-outcome')).toBe('success');
      // Every chart is drawn, each from the report's own samples.
      const rows = await chart(done, 'rows');
      expect(rows.points).toBe(samples.length);
      expect(Number(rows.max)).toBe(Math.max(...samples.map((s) => s.rowsCopied)));
      expect(rows.path).toMatch(/^M[\d.]+,[\d.]+L/);
      const probe = await chart(done, 'probe');
      expect(probe.points).toBe(samples.filter((s) => s.probeMs !== null).length);
      expect(probe.points).toBeGreaterThan(0);
      for (const id of ['rate', 'backlog', 'lag']) expect(await done.locator(`svg[data-chart="${id}"]`).count(), id).toBe(1);
      // The cut-over's blocked time, as the run measured it, labels the cut-over on every chart.
      expect(rows.labels).toContain(`cut-over: writers blocked ${report.cutoverLockedMs} ms (${report.cutoverAttempts} attempt(s))`);
      expect(rows.labels).toContain('verified');
      expect(await done.locator('svg.phases g[data-phase="copy"]').count()).toBeGreaterThan(0);
      // Nothing was fetched from elsewhere: the file is the whole page.
      expect(await readFile(path.join(dir, html!), 'utf8')).not.toMatch(/(src|href)="(https?:)?\/\//);
    } finally {
      await done.close();
    }
  });
});
