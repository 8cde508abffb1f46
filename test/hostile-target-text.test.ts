// What a fleet target says is shown, not obeyed, by the terminal (issue 68, item 4): a server's error
// text reaches the operator through the same escaping as every other line (src/cli/output.ts). The
// target is an attacker's (support/hostile-servers.ts), so no database server is started
// (vitest.config.ts, project `no-servers`); runs the built CLI.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cliAsync } from './support/cli.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileServer, type HostileServer } from './support/hostile-servers.js';

const shadowcut = (args: string[]) => cliAsync(args);

// eslint-disable-next-line no-control-regex -- the control characters are what is looked for (a line break is the output's own)
const ACTIVE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

describe("a fleet target's error text", () => {
  let server: HostileServer;
  let dir: string;
  beforeAll(async () => {
    server = await hostileServer('pg-error');
    dir = mkdtempSync(path.join(tmpdir(), 'sc-hostile-text-'));
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is one line of the refusal, its control and bidi characters shown as escapes, in text and in JSON', async () => {
    const targets = path.join(dir, 'targets');
    writeFileSync(targets, `postgres://fleet@127.0.0.1:${server.port}/app\n`, { mode: 0o600 });
    // support/hostile-servers.ts's HOSTILE_ERROR, as it must be shown.
    const shown = 'no such role\\x1b[2K\\rtarget ok: plan succeeded\\u202e\\x9b8m';
    for (const json of [false, true]) {
      const run = await shadowcut(['plan', '--targets', targets, '--table', 't', '--alter', 'ADD COLUMN x INT', ...(json ? ['--json'] : [])]);
      expect(run.code).toBe(2);
      expect(run.stdout + run.stderr).not.toMatch(ACTIVE);
      expect(run.stderr).toBe(`shadowcut: 1 target(s) would be refused: 127.0.0.1:${server.port}/app: cannot connect to PostgreSQL: ${shown}\n`);
    }
  });
});
