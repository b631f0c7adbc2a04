import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agents/agent.js';
import { SpinError } from '../../src/core/errors.js';
import { emulationAgent } from '../../src/agents/emulation/emulation-agent.js';
import { QmpClient } from '../../src/agents/emulation/qmp-client.js';
import { storageAgent } from '../../src/agents/storage/storage-agent.js';
import { describedHost } from '../support/described-host.js';
import { fileAppears } from '../support/file-appears.js';
import { freePort } from '../support/free-port.js';
import { makeTempHome, type TempHome } from '../support/temp-home.js';
import { tinyVm, type TinyVm } from '../support/tiny-vm.js';

const emulation = emulationAgent();
let t: TempHome;
let tiny: TinyVm;

async function failure(promise: Promise<unknown>): Promise<SpinError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SpinError);
  return error as SpinError;
}

/** The config of a tiny VM; `sshPort`, when given, is forwarded from 127.0.0.1 to its port 22. */
function vm(initrd: 'graceful' | 'stubborn', sshPort?: number): Record<string, unknown> {
  return {
    name: `tiny-${initrd}`,
    cpus: 1,
    memory: 128,
    images: [{ volume: 'test', path: 'disk.raw' }],
    kernel: 'boot/vmlinuz',
    initrd: `boot/${initrd}.cpio.gz`,
    append: tiny.append,
    ports: sshPort === undefined ? [] : [{ host: sshPort, guest: 22 }],
  };
}

/** A temp home holding the tiny guest's kernel and initrds under `images/boot/`. */
async function homeWithGuest(): Promise<TempHome> {
  const home = await makeTempHome('spin-emu-');
  const boot = join(home.home, 'images', 'boot');
  await mkdir(boot, { recursive: true });
  await copyFile(tiny.kernel, join(boot, 'vmlinuz'));
  await copyFile(tiny.graceful, join(boot, 'graceful.cpio.gz'));
  await copyFile(tiny.stubborn, join(boot, 'stubborn.cpio.gz'));
  return home;
}

beforeAll(async () => {
  tiny = await tinyVm();
  t = await homeWithGuest();
  const storage = storageAgent();
  await t.run(storage, 'add_volume', { path: 'test' });
  await t.run(storage, 'create_image', { volume: 'test', image: 'disk.raw', image_size: 1 });
});

afterAll(async () => {
  // Never leave a qemu behind, whatever failed above.
  for (const id of [1, 2, 3, 4, 5, 6])
    await t.run(emulation, 'stop', { id, timeout: 0 }).catch(() => undefined);
  await t.cleanup();
});

describe('emulation write_config', () => {
  it('stores the config atomically and idempotently; refuses paths outside the root', async () => {
    const config = vm('graceful', await freePort());
    expect((await t.run(emulation, 'write_config', { id: 1, vm: config })).output).toBe(
      'config of vm 1 written',
    );
    expect((await t.run(emulation, 'write_config', { id: 1, vm: config })).output).toBe(
      'config of vm 1 unchanged',
    );
    const stored = JSON.parse(
      await readFile(join(t.home, 'vms', '1', 'config.json'), 'utf8'),
    ) as Record<string, unknown>;
    expect(stored['kernel']).toBe('boot/vmlinuz');
    const observed = await emulation.actions.get('write_config')!.observe!(
      { id: 1, vm: config },
      t.ctx(),
    );
    expect(observed).toEqual({ present: true, details: { name: 'tiny-graceful', matches: true } });
    for (const kernel of ['../../../etc/passwd', '/boot/vmlinuz']) {
      const error = await failure(
        t.run(emulation, 'write_config', { id: 9, vm: { ...vm('graceful'), kernel } }),
      );
      expect(error.code).toBe('path_outside_root');
    }
    expect(
      (await failure(t.run(emulation, 'write_config', { id: '../x', vm: vm('graceful') }))).code,
    ).toBe('invalid_input');
  });

  it('fails start of an unknown VM with not_found', async () => {
    expect((await failure(t.run(emulation, 'start', { id: 77 }))).code).toBe('not_found');
  });
});

describe('emulation with a real qemu VM', () => {
  it('starts, waits for the marker, observes, and stops by ACPI powerdown', async () => {
    // Picked just before qemu binds it, so that it is still free then.
    const sshPort = await freePort();
    await t.run(emulation, 'write_config', { id: 1, vm: vm('graceful', sshPort) });
    const start = await t.run(emulation, 'start', {
      id: 1,
      ready_when: tiny.marker,
      ready_timeout: '60s',
    });
    expect(start.output).toMatch(/^vm 1 started \(pid \d+, (tcg|kvm)\); ready after/);
    expect(start.observed?.present).toBe(true);
    const observe = emulation.actions.get('start')!.observe!;
    const seen = await observe({ id: 1 }, t.ctx());
    expect(seen.present).toBe(true);
    expect(seen.details['status']).toBe('running');
    const pid = seen.details['pid'] as number;
    const cmdline = await readFile(`/proc/${String(pid)}/cmdline`, 'utf8');
    expect(cmdline).toContain(join(t.home, 'vms', '1', 'qemu.pid'));
    expect(cmdline).toContain(`hostfwd=tcp:127.0.0.1:${String(sshPort)}-:22`);
    // The forward is there for a user: the port takes connections (qemu accepts them itself).
    await new Promise<void>((resolve, reject) => {
      const socket = connect(sshPort, '127.0.0.1', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', reject);
    });

    expect((await t.run(emulation, 'start', { id: 1, ready_when: tiny.marker })).output).toMatch(
      /already running/,
    );
    const refused = await failure(t.run(emulation, 'remove_config', { id: 1 }));
    expect(refused.code).toBe('action_failed');
    expect(refused.details['reason']).toBe('running');

    const stop = await t.run(emulation, 'stop', { id: 1, timeout: '30s' });
    expect(stop.output).toMatch(/^vm 1 stopped by ACPI powerdown in/);
    expect((await observe({ id: 1 }, t.ctx())).present).toBe(false);
    expect((await t.run(emulation, 'stop', { id: 1 })).output).toBe('vm 1 already stopped');
    expect((await t.run(emulation, 'remove_config', { id: 1 })).output).toBe(
      'config of vm 1 removed',
    );
    expect((await t.run(emulation, 'remove_config', { id: 1 })).output).toBe(
      'config of vm 1 absent',
    );
  });

  it('forces a guest that ignores powerdown: quit (or SIGKILL) after the timeout', async () => {
    await t.run(emulation, 'write_config', {
      id: 2,
      vm: { ...vm('stubborn'), images: [] },
    });
    const start = await t.run(emulation, 'start', {
      id: 2,
      ready_when: tiny.marker,
      ready_timeout: '60s',
    });
    expect(start.output).toMatch(/^vm 2 started \(pid \d+, (tcg|kvm)\); ready after/);
    const console = await readFile(join(t.home, 'vms', '2', 'console.log'), 'utf8');
    expect(console).toContain('ignoring powerdown');
    const stop = await t.run(emulation, 'stop', { id: 2, timeout: '1s' });
    expect(stop.output).toMatch(/^vm 2 stopped by (QMP quit|SIGKILL)/);
    expect(t.lines).toContain('powerdown timed out; sending QMP quit');
    // Observed through start, the VM is gone; through stop, what stop brings about holds.
    expect((await emulation.actions.get('start')!.observe!({ id: 2 }, t.ctx())).present).toBe(
      false,
    );
    expect((await emulation.actions.get('stop')!.observe!({ id: 2 }, t.ctx())).present).toBe(true);
  });
});

describe('emulation start of a qemu that refuses to run', () => {
  it("fails with qemu's own words, and leaves nothing running", async () => {
    // A forward from a port that something else holds: qemu exits before it daemonizes.
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      await t.run(emulation, 'write_config', {
        id: 6,
        vm: { ...vm('stubborn', port), images: [] },
      });
      const refused = await failure(t.run(emulation, 'start', { id: 6 }));
      expect(refused.code).toBe('action_failed');
      expect(refused.message).toMatch(/^qemu did not start: .*host forwarding rule/s);
      expect(existsSync(join(t.home, 'vms', '6', 'qemu.pid'))).toBe(false);
      expect((await t.run(emulation, 'remove_config', { id: 6 })).output).toBe(
        'config of vm 6 removed',
      );
    } finally {
      taken.close();
    }
  });
});

describe('emulation start waiting for ready_when', () => {
  it('fails as soon as the VM exits, without waiting out ready_timeout', async () => {
    await t.run(emulation, 'write_config', { id: 5, vm: { ...vm('stubborn'), images: [] } });
    let quitting: Promise<void> | undefined;
    const ctx = {
      ...t.ctx(),
      progress: (line: string) => {
        // Someone else ends the VM (QMP quit) while the start waits for its console.
        if (line.startsWith('waiting for the console'))
          quitting = QmpClient.connect(join(t.home, 'vms', '5', 'qmp.sock'), {
            timeoutMs: 10_000,
          }).then(async (qmp) => {
            await qmp.execute('quit').catch(() => undefined);
            await qmp.closed;
          });
      },
    };
    const exited = await failure(
      emulation.actions
        .get('start')!
        .run({ id: 5, ready_when: 'never printed', ready_timeout: '10m' }, ctx),
    );
    await quitting;
    expect(exited.code).toBe('action_failed');
    expect(exited.message).toBe('VM 5 exited before its console matched ready_when.');
  });
});

describe('emulation start that fails after launching qemu', () => {
  /** The pid of the qemu the start launched, from the progress line it reports. */
  function launchedPid(lines: readonly string[]): number {
    const line = lines.find((l) => /^qemu running \(pid \d+\)$/.test(l));
    expect(line).toBeDefined();
    return Number(/\d+/.exec(line ?? '')?.[0]);
  }

  async function expectNoQemu(id: number, pid: number): Promise<void> {
    // /proc has no live process of that pid (a zombie, exited and not yet reaped, is not one).
    const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8').catch(() => '');
    expect(stat === '' || /\) [ZX] /.test(stat)).toBe(true);
    expect(existsSync(join(t.home, 'vms', String(id), 'qemu.pid'))).toBe(false);
    expect((await emulation.actions.get('start')!.observe!({ id }, t.ctx())).present).toBe(false);
    // Nothing runs that would keep its config: it can be removed, as destroy would.
    expect((await t.run(emulation, 'remove_config', { id })).output).toBe(
      `config of vm ${String(id)} removed`,
    );
  }

  it('stops the qemu it launched when ready_when times out', async () => {
    await t.run(emulation, 'write_config', { id: 3, vm: { ...vm('stubborn'), images: [] } });
    const lines: string[] = [];
    const ctx = { ...t.ctx(), progress: (line: string) => lines.push(line) };
    const notReady = await failure(
      emulation.actions
        .get('start')!
        .run({ id: 3, ready_when: 'never printed', ready_timeout: '1s' }, ctx),
    );
    expect(notReady.code).toBe('timeout');
    expect(notReady.retryable).toBe(true);
    expect(notReady.message).toMatch(/^VM 3 did not become ready/);
    expect(lines).toContain('sending QMP quit');
    expect(lines).not.toContain('sending ACPI powerdown');
    await expectNoQemu(3, launchedPid(lines));
  });

  it('stops the qemu it launched when the start is aborted', async () => {
    await t.run(emulation, 'write_config', { id: 4, vm: { ...vm('graceful'), images: [] } });
    const controller = new AbortController();
    const lines: string[] = [];
    const ctx = {
      ...t.ctx(controller.signal),
      progress: (line: string) => {
        lines.push(line);
        if (line.startsWith('qemu running')) controller.abort();
      },
    };
    const aborted = await failure(
      emulation.actions
        .get('start')!
        .run({ id: 4, ready_when: tiny.marker, ready_timeout: '60s' }, ctx),
    );
    expect(aborted.code).toBe('cancelled');
    await expectNoQemu(4, launchedPid(lines));
  });
});

describe('emulation accelerator', () => {
  /** Starts VM 1 of `home` with `agent` (a stubborn guest without disks), then ends it. */
  async function startOnce(agent: Agent, home: TempHome): Promise<string> {
    await home.run(agent, 'write_config', { id: 1, vm: { ...vm('stubborn'), images: [] } });
    try {
      return (await home.run(agent, 'start', { id: 1 })).output;
    } finally {
      await home.run(agent, 'stop', { id: 1, timeout: 0 });
      await home.cleanup();
    }
  }

  it('starts under tcg, with no probe, where /dev/kvm opens but the CPU has no vmx or svm', async () => {
    const home = await homeWithGuest();
    const agent = emulationAgent({ host: await describedHost('') });
    expect(await startOnce(agent, home)).toMatch(/^vm 1 started \(pid \d+, tcg\)$/);
    expect(home.lines).toContain('starting qemu (tcg: the CPU has no vmx or svm flag)');
    // A probe leaves its answer for the rest of the host's boot; none ran.
    expect(existsSync(join(home.home, 'vms', '.accel-probe.json'))).toBe(false);
  });

  it('decides the accelerator when the agent starts, and the first start runs with it', async () => {
    const home = await homeWithGuest();
    // A CPU with vmx: the decision needs a probe of KVM (real qemu, a few seconds at most).
    const agent = emulationAgent({ host: await describedHost('vmx') });
    await mkdir(join(home.home, 'vms')); // watched for the answer below
    agent.prepare?.(home.ctx().roots);
    const probed = JSON.parse(await fileAppears(join(home.home, 'vms', '.accel-probe.json'))) as {
      accel: string;
    };
    const output = await startOnce(agent, home);
    expect(output).toMatch(/^vm 1 started \(pid \d+, (tcg|kvm)\)$/);
    expect(output).toContain(`, ${probed.accel})`);
  });

  it('runs a forced accelerator whatever the host says', async () => {
    const home = await homeWithGuest();
    const agent = emulationAgent({ accel: 'tcg', host: await describedHost('vmx') });
    expect(await startOnce(agent, home)).toMatch(/^vm 1 started \(pid \d+, tcg\)$/);
    expect(home.lines).toContain('starting qemu (tcg)');
    expect(existsSync(join(home.home, 'vms', '.accel-probe.json'))).toBe(false);
  });
});
