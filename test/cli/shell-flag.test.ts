import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spin, testDir } from '../support/spin-cli.js';

describe('a shell command applied without --allow-shell', () => {
  it('is refused before anything runs, naming the command and the flag (exit 2)', async () => {
    const home = await testDir('spin-shell-flag-');
    const file = join(home, 'pkg.spin.yaml');
    await writeFile(
      file,
      `package: mixed
commands:
  vol: { resource: storage, action: add_volume, params: { path: data } }
  hello: { resource: shell, action: run, needs: [vol], params: { argv: [echo, hi] } }
`,
    );
    const run = await spin(['apply', file, '--output', 'plain'], { env: { SPIN_HOME: home } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /mixed\/hello is a shell command, which runs only with --allow-shell; nothing was run/,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
    // Nothing ran: not even the volume before it.
    expect(existsSync(join(home, 'images', 'data'))).toBe(false);
    const allowed = await spin(['apply', file, '--allow-shell', '--output', 'plain'], {
      env: { SPIN_HOME: home },
    });
    expect(allowed.code, allowed.stderr).toBe(0);
  });
});
