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
    // A qcow2 disk in place of the raw one: the disk cannot change format in place, so it is
    // replaced, and the VM that runs on it is stopped first and started again on the new one.
    const qcow2 = (await readFile(smaller, 'utf8')).replace(
      'image_size: 1',
      'image_size: 1, format: qcow2',
    );
    await writeFile(smaller, qcow2);
    const replacePlan = await spin(['plan', smaller], { env });
    expect(replacePlan.stdout).toMatch(/-\/\+ image\s+replace\s+params\.format changed/);
    expect(replacePlan.stdout).toMatch(/then: config, start/);
    expect(replacePlan.stdout).toMatch(/~ config\s+update\s+needs image, which is replaced/);
    expect(replacePlan.stdout).toMatch(
      /-\/\+ start\s+replace\s+restart: needs image, which is replaced/,
    );
    const replaced = await spin(['apply', smaller, '--output', 'plain', '--allow-replace'], {
      env,
    });
    expect(replaced.code, replaced.stdout + replaced.stderr).toBe(0);
    const steps = [...replaced.stdout.matchAll(/vm-demo\/(\S+) succeeded/g)].map((m) => m[1]);
    expect(steps).toEqual(['undo:start', 'undo:image', 'image', 'config', 'start']);
    const newPid = /vm 1 started \(pid (\d+)/.exec(replaced.stdout)?.[1];
    expect(newPid, replaced.stdout).toBeDefined();
    expect(newPid).not.toBe(pid);
    const newArgv = (await readFile(`/proc/${newPid!}/cmdline`, 'utf8')).split('\0');
    expect(newArgv.join(' ')).toContain('"driver":"qcow2"');
    expect((await spin(['plan', smaller], { env })).stdout).toContain('No changes');
    const destroyed = await spin(['destroy', 'vm-demo', '--output', 'plain'], { env });
    expect(destroyed.code, destroyed.stdout + destroyed.stderr).toBe(0);
    expect(destroyed.stdout).toMatch(/vm 1 stopped by ACPI powerdown/);
    expect(destroyed.stdout).toMatch(/Destroy complete: 4 undone\./);
  });
});
