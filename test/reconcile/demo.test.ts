import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { repoRoot, spin, testDir } from '../support/spin-cli.js';

describe("the README's demo", () => {
  it('boots the tiny guest of npm run guest, shows it running, and stops it by ACPI', async () => {
    const home = await testDir('spin-demo-');
    const env = { SPIN_HOME: home };
    const guest = spawnSync(process.execPath, ['scripts/guest.js'], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    expect(guest.status, guest.stderr).toBe(0);
    expect(guest.stdout).toContain(`guest ready in ${home}/images/guest`);
    const applied = await spin(['apply', 'examples/vm.spin.yaml', '--output', 'plain'], { env });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/vm-demo\/start succeeded .*vm 1 started .*; ready after/);
    const status = await spin(['status'], { env });
    expect(status.stdout).toMatch(/start\s+succeeded\s+emulation\.start\s+vm running/);
    const destroyed = await spin(['destroy', 'vm-demo', '--output', 'plain'], { env });
    expect(destroyed.code, destroyed.stdout + destroyed.stderr).toBe(0);
    expect(destroyed.stdout).toMatch(/vm 1 stopped by ACPI powerdown/);
    expect(destroyed.stdout).toMatch(/Destroy complete: 4 undone\./);
  });
});
