import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { spin, startSpin, testDir } from '../support/spin-cli.js';
import { tinyVm, tinyVmPackage, type TinyVm } from '../support/tiny-vm.js';

let guest: TinyVm;
beforeAll(async () => {
  guest = await tinyVm();
});

/** The VM a failed test may have left running: ended so nothing outlives the run. */
let pidFile: string | undefined;
afterEach(async () => {
  const pid = Number((await readFile(pidFile ?? '', 'utf8').catch(() => '')).trim());
  pidFile = undefined;
  if (pid > 1) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone, as it should be
    }
  }
});

const occurrences = (text: string, word: string): number => text.split(word).length - 1;

describe('spin logs of a VM', () => {
  it('prints its console, follows it as it boots, and across a restart that rotated it', async () => {
    const home = await testDir('spin-logs-vm-');
    const file = await tinyVmPackage(home, guest);
    const env = { SPIN_HOME: home };
    const run = (...args: string[]) => spin(args, { env });
    const consoleLog = join(home, 'vms/tiny/console.log');
    pidFile = join(home, 'vms/tiny/qemu.pid');

    // The VM's directory exists, its console not yet: the follow waits for it.
    expect((await run('apply', file, '--target', 'config', '--output', 'plain')).code).toBe(0);
    const follow = startSpin(['logs', '--vm', 'tiny', '-f'], { env });
    onTestFinished(async () => {
      follow.signal('SIGKILL');
      await follow.done;
    });
    const notYet = await run('logs', '--vm', 'tiny');
    expect(notYet.code).toBe(2);
    expect(notYet.stderr).toContain('VM tiny has no console yet');

    const applied = await run('apply', file, '--output', 'plain');
    expect(applied.code, applied.stdout).toBe(0);
    // Lines appear as the guest boots: the kernel's, then the marker.
    await follow.waitFor(new RegExp(guest.marker));
    expect(follow.output()).toMatch(/Linux version/);
    expect(follow.output().indexOf('Linux version')).toBeLessThan(
      follow.output().indexOf(guest.marker),
    );

    // qemu dies; its console is rotated away as a start rotates it; apply starts it again.
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    process.kill(pid, 'SIGKILL');
    await rename(consoleLog, `${consoleLog}.1`);
    const restarted = await run('apply', file, '--output', 'plain');
    expect(restarted.code, restarted.stdout).toBe(0);
    expect(restarted.stdout).toMatch(/tiny\/start succeeded/);
    await follow.waitForOutput(
      (output) => occurrences(output, guest.marker) >= 2,
      'the marker of the second boot',
    );
    await follow.waitFor(/-- .*console\.log began anew \(the VM started again\); following it/);

    // Without -f: the current boot, or one back; the start's own log with --attempt.
    const now = await run('logs', 'tiny/start');
    expect(now.code).toBe(0);
    expect(occurrences(now.stdout, guest.marker)).toBe(1);
    expect(now.stdout).toBe(await readFile(consoleLog, 'utf8'));
    const before = await run('logs', 'tiny/start', '--boot', '1');
    expect(before.stdout).toBe(await readFile(`${consoleLog}.1`, 'utf8'));
    const both = await run('logs', '--vm', 'tiny', '--since', '1h');
    expect(occurrences(both.stdout, guest.marker)).toBe(2);
    const last = await run('logs', '--vm', 'tiny', '--tail', '3');
    expect(last.stdout.trimEnd().split('\n')).toHaveLength(3);
    const own = await run('logs', 'tiny/start', '--attempt', '2');
    expect(own.stdout).toMatch(/^-- started emulation\.start \(attempt 2\)\nstarting qemu/);
    expect(own.stdout).toMatch(/\n-- succeeded in \S+: vm tiny started/);
    const gone = await run('logs', '--vm', 'tiny', '--boot', '5');
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('VM tiny has no console of 5 boots back');

    follow.signal('SIGINT');
    const ended = await follow.done;
    expect(ended.code).toBe(0);
    expect((await run('destroy', 'tiny', '--output', 'plain')).code).toBe(0);
  });
});
