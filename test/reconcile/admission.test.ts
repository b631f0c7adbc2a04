import { constants } from 'node:fs';
import { access, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { measureNode } from '../../src/agents/emulation/capacity.js';
import { fileAppears } from '../support/file-appears.js';
import { spin, startSpin, testDir, type RunningSpin } from '../support/spin-cli.js';
import { endVmsAfterEach, tinyVm, type TinyVm } from '../support/tiny-vm.js';

let guest: TinyVm;
beforeAll(async () => {
  guest = await tinyVm();
});

/** VMs a failed test may have left running: ended so nothing outlives the run. */
const pidFiles = endVmsAfterEach();

/**
 * A package of one VM booting the tiny guest (no disk), `memory` MiB, retried up to 3 times, its
 * commands for `node`.
 */
function vmPackage(name: string, memory: number, node = 'local'): string {
  return `package: ${name}
defaults: { timeout: 2m, retries: 3, node: ${node} }
commands:
  config:
    resource: emulation
    action: write_config
    params:
      id: ${name}
      vm:
        name: ${name}
        cpus: 1
        memory: ${String(memory)}
        images: []
        kernel: boot/vmlinuz
        initrd: boot/initrd.gz
        append: ${JSON.stringify(guest.append)}
  start: { resource: emulation, action: start, needs: [config], params: { id: ${name} } }
`;
}

/**
 * A temp home with the tiny guest's kernel and initramfs, and a package file per VM of `vms`
 * (name → MiB) in it, for the node `node` names (local by default).
 */
async function vmHome(
  vms: Record<string, number>,
  node?: (name: string) => string,
): Promise<{ home: string; files: string[] }> {
  const home = await testDir('spin-admission-');
  await mkdir(join(home, 'images/boot'), { recursive: true });
  await copyFile(guest.kernel, join(home, 'images/boot/vmlinuz'));
  await copyFile(guest.graceful, join(home, 'images/boot/initrd.gz'));
  const files: string[] = [];
  for (const [name, memory] of Object.entries(vms)) {
    const file = join(home, `${name}.spin.yaml`);
    await writeFile(file, vmPackage(name, memory, node?.(name)));
    files.push(file);
    pidFiles.push(join(home, 'vms', name, 'qemu.pid'));
  }
  return { home, files };
}

/** `--reserve-memory` that leaves `mib` of this node's memory to VMs. */
function leaving(mib: number): string {
  return String(measureNode().memoryMib - mib);
}

interface CommandEvent {
  type: 'command';
  package: string;
  id: string;
  phase: string;
  attempt: number;
  error?: { code: string; message: string };
}

function commandEvents(stdout: string): CommandEvent[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { type: string })
    .filter((event): event is CommandEvent => event.type === 'command');
}

describe('admission of VM starts', () => {
  it('refuses a VM larger than the free memory at once, not retried; plan warns first', async () => {
    const { home, files } = await vmHome({ big: 1_048_576 });
    const env = { SPIN_HOME: home };
    const [file = ''] = files;

    const planned = await spin(['plan', file], { env });
    expect(planned.code).toBe(0);
    expect(planned.stdout).toMatch(
      /^warning: package big cannot fit on node local: VM big asks 1048576 MiB of memory; \d+ MiB is free \([\d.]+ GiB total/m,
    );

    const applied = await spin(['apply', file, '--output', 'json'], { env });
    expect(applied.code).toBe(1);
    expect(applied.stdout).toContain(
      '"type":"warning","message":"package big cannot fit on node local',
    );
    const start = commandEvents(applied.stdout).filter((e) => e.id === 'start');
    expect(start.filter((e) => e.phase === 'running').map((e) => e.attempt)).toEqual([1]);
    const failed = start.find((e) => e.phase === 'failed');
    expect(failed?.attempt).toBe(1);
    expect(failed?.error?.code).toBe('insufficient_resources');
    expect(failed?.error?.message).toMatch(/^VM big asks 1048576 MiB of memory; \d+ MiB is free/);
    expect((await spin(['status', 'big'], { env })).stdout).toMatch(/start\s+failed/);
  });

  it('refuses a VM that fits alone but not beside one running (daemon --reserve-memory)', async () => {
    const { home, files } = await vmHome({ first: 128, second: 128 });
    const env = { SPIN_HOME: home };
    const [first = '', second = ''] = files;
    const reserve = leaving(200);
    onTestFinished(async () => {
      await spin(['daemon', 'stop'], { env });
    });
    expect((await spin(['daemon', 'start', '--reserve-memory', reserve], { env })).code).toBe(0);

    const one = await spin(['apply', first, '--output', 'plain'], { env });
    expect(one.stdout).toContain('first/start succeeded');
    expect(one.code).toBe(0);

    const planned = await spin(['plan', second, '--reserve-memory', reserve], { env });
    expect(planned.code).toBe(0);
    expect(planned.stdout).toContain(
      'warning: package second cannot fit on node local: VM second asks 128 MiB of memory; 72 MiB is free',
    );
    expect(planned.stdout).toContain('128 MiB reserved by VM first)');

    const two = await spin(['apply', second, '--output', 'plain', '--reserve-memory', reserve], {
      env,
    });
    expect(two.code).toBe(1);
    expect(two.stderr).toContain('warning: package second cannot fit on node local');
    expect(two.stdout).toMatch(
      /second\/start failed in \S+: VM second asks 128 MiB of memory; 72 MiB is free \(.*kept for the host, 128 MiB reserved by VM first\) \[insufficient_resources\]/,
    );
    expect(two.stdout).not.toContain('attempt 2');
  });

  it('admits one of two starts racing on two nodes of one host when only one fits', async () => {
    // A queue runs one command at a time: starts overlap when two nodes' agents share a host.
    const { home, files } = await vmHome({ left: 128, right: 128 }, (name) => name);
    const reserve = leaving(200);
    // The agents' qemu waits at a gate before it starts a VM: the first start holds its launch
    // open until the second start runs too, so that the two overlap for certain. (A qemu left
    // at the gate gives up when the test's directories are removed.)
    const gate = await testDir('spin-gate-');
    const real = await realQemu();
    await writeFile(
      join(gate, 'qemu-system-x86_64'),
      `#!/bin/sh
case " $* " in *" -daemonize "*)
  echo $$ >> ${gate}/entered
  while [ ! -e ${gate}/open ]; do [ -d ${gate} ] || exit 1; sleep 0.01; done ;;
esac
exec ${real} "$@"
`,
      { mode: 0o755 },
    );
    const env = { SPIN_HOME: home };
    onTestFinished(async () => {
      await spin(['daemon', 'stop'], { env });
    });
    expect((await spin(['daemon', 'start', '--no-agents'], { env })).code).toBe(0);
    const agents: RunningSpin[] = ['left', 'right'].map((node) => {
      const agent = startSpin(['agent', 'emulation', '--node', node, '--reserve-memory', reserve], {
        env: { ...env, PATH: `${gate}:${process.env['PATH'] ?? ''}` },
      });
      onTestFinished(async () => {
        agent.signal('SIGTERM');
        await agent.done;
      });
      return agent;
    });
    await Promise.all(agents.map((a) => a.waitFor(/emulation agent consuming/)));

    const apply = startSpin(['apply', ...files, '--output', 'json'], { env });
    await apply.waitFor(/"package":"left","id":"start","phase":"running"/);
    await apply.waitFor(/"package":"right","id":"start","phase":"running"/);
    await fileAppears(join(gate, 'entered'), apply.done);
    await writeFile(join(gate, 'open'), '');
    const applied = await apply.done;

    expect(applied.code).toBe(1);
    const ends = commandEvents(applied.stdout).filter(
      (e) => e.id === 'start' && (e.phase === 'succeeded' || e.phase === 'failed'),
    );
    expect(ends.map((e) => e.phase).sort()).toEqual(['failed', 'succeeded']);
    const refused = ends.find((e) => e.phase === 'failed');
    expect(refused?.error?.code).toBe('insufficient_resources');
    expect(refused?.attempt).toBe(1);
    const admitted = ends.find((e) => e.phase === 'succeeded')?.package ?? '';
    expect(refused?.error?.message).toContain(`128 MiB reserved by VM ${admitted})`);
    // The refused start never launched a qemu.
    expect((await readFile(join(gate, 'entered'), 'utf8')).trim().split('\n')).toHaveLength(1);
  });
});

/** The qemu on this process's PATH. */
async function realQemu(): Promise<string> {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const file = join(dir, 'qemu-system-x86_64');
    if (
      dir !== '' &&
      (await access(file, constants.X_OK).then(
        () => true,
        () => false,
      ))
    )
      return file;
  }
  throw new Error('qemu-system-x86_64 is not on PATH');
}
