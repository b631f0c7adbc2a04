import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, spin, testDir } from '../support/spin-cli.js';

describe("the README's demo", () => {
  it('boots the tiny guest of npm run guest, restarts it when its config changes, and stops it by ACPI', async () => {
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
    // Less memory: the config is rewritten, and the running VM restarted on it through the ladder.
    const smaller = join(home, 'vm.spin.yaml');
    const example = await readFile(join(repoRoot, 'examples/vm.spin.yaml'), 'utf8');
    await writeFile(smaller, example.replace('memory: 256', 'memory: 128'));
    const plan = await spin(['plan', smaller], { env });
    expect(plan.stdout).toMatch(/~ config\s+update\s+changed: params\.vm\.memory/);
    expect(plan.stdout).toMatch(/~ start\s+update\s+restart \(config changed\)/);
    const restarted = await spin(['apply', smaller, '--output', 'plain'], { env });
    expect(restarted.code, restarted.stdout + restarted.stderr).toBe(0);
    const pid =
      /vm 1 restarted \(pid (\d+), \w+\) \(config changed; the old one stopped by ACPI powerdown\)/.exec(
        restarted.stdout,
      )?.[1];
    expect(pid, restarted.stdout).toBeDefined();
    const argv = (await readFile(`/proc/${pid!}/cmdline`, 'utf8')).split('\0');
    expect(argv[argv.indexOf('-m') + 1]).toBe('128');
    expect((await spin(['plan', smaller], { env })).stdout).toContain('No changes');
    const destroyed = await spin(['destroy', 'vm-demo', '--output', 'plain'], { env });
    expect(destroyed.code, destroyed.stdout + destroyed.stderr).toBe(0);
    expect(destroyed.stdout).toMatch(/vm 1 stopped by ACPI powerdown/);
    expect(destroyed.stdout).toMatch(/Destroy complete: 4 undone\./);
  });
});
