import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StateData } from '../../src/core/state-types.js';
import { requireBuild } from '../support/cli-process.js';
import { spin, testDir } from '../support/spin-cli.js';
import { alive } from '../support/process-alive.js';

describe('spin apply with a command timeout', () => {
  it("ends a shell command at its own timeout, not the broker's grace after it", async () => {
    requireBuild();
    const home = await testDir('spin-apply-timeout-');
    const pidFile = join(home, 'sh.pid');
    const marker = join(home, 'marker');
    // Killed at 1s, the command never writes the marker; with the broker's 5s grace as its
    // deadline it would have, at 4s.
    const script = `echo $$ > ${pidFile}.tmp && mv ${pidFile}.tmp ${pidFile}; sleep 4; touch ${marker}`;
    const file = join(home, 'nap.spin.yaml');
    await writeFile(
      file,
      `package: nap
commands:
  nap: { resource: shell, action: run, timeout: 1s, params: { argv: [sh, -c, ${JSON.stringify(script)}] } }
`,
    );
    const run = await spin(['apply', file, '--allow-shell'], { env: { SPIN_HOME: home } });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/nap\/nap failed in \S+: .*timeout of 1\.0s passed.* \[timeout\]/);
    const state = JSON.parse(await readFile(join(home, 'state.json'), 'utf8')) as StateData;
    const record = state.packages['nap']?.commands['nap'];
    expect(record?.status).toBe('failed');
    expect(record?.error?.code).toBe('timeout');
    expect(alive(Number(await readFile(pidFile, 'utf8')))).toBe(false);
    expect(existsSync(marker)).toBe(false);
  });
});
