import { describe, expect, it } from 'vitest';
import { buildQemuArgv, qemuOptValue } from '../../src/agents/emulation/qemu-argv.js';
import {
  parseVmConfig,
  type VmConfig,
  type VmPaths,
} from '../../src/agents/emulation/vm-config.js';
import { SpinError } from '../../src/core/errors.js';

const hostile = 'name=x,file=/etc/passwd';
const paths: VmPaths = {
  id: '1',
  dir: '/h,ome/vms/1',
  config: '/h,ome/vms/1/config.json',
  qmp: '/h,ome/vms/1/qmp.sock',
  events: '/h,ome/vms/1/events.sock',
  pid: '/h,ome/vms/1/qemu.pid',
  console: '/h,ome/vms/1/console.log',
  supervision: '/h,ome/vms/1/supervision.json',
  lock: '/h,ome/vms/1/lifecycle.lock',
};
// Values that validation would refuse, to show the builder alone keeps them inert.
const config: VmConfig = {
  name: hostile,
  cpus: 2,
  memory: 256,
  images: [{ volume: 'v', path: hostile, cdrom: false }],
  append: '-hda /etc/shadow -device x,file=/etc/passwd',
  ports: [{ host: 8022, guest: 22, protocol: 'tcp' }],
};
const ourFlags = new Set([
  '-name', '-machine', '-accel', '-nodefaults', '-no-user-config', '-display', '-m', '-smp',
  '-chardev', '-mon', '-serial', '-pidfile', '-daemonize', '-blockdev', '-device', '-netdev',
  '-kernel', '-initrd', '-append', '-action',
]); // prettier-ignore

describe('buildQemuArgv', () => {
  const argv = buildQemuArgv({
    config,
    paths,
    accel: 'tcg',
    drives: [
      { file: `/h,ome/images/v/${hostile}`, format: 'qcow2', cdrom: false },
      { file: '/h/images/v/cd.iso', format: 'raw', cdrom: true },
    ],
    kernel: `/h/images/boot/-kernel ${hostile}`,
    initrd: '/h/images/boot/initrd',
  });

  it('puts only its own flags in flag position; package strings are values', () => {
    // Walk the argv as qemu parses it: a flag, then its one value unless it takes none.
    const noValue = new Set(['-nodefaults', '-no-user-config', '-daemonize']);
    for (let i = 0; i < argv.length; i++) {
      const flag = argv[i] ?? '';
      expect(ourFlags.has(flag), `argv[${String(i)}] = ${flag}`).toBe(true);
      if (!noValue.has(flag)) i++;
    }
    expect(argv[argv.indexOf('-append') + 1]).toBe(config.append);
    expect(argv[argv.indexOf('-kernel') + 1]).toBe(`/h/images/boot/-kernel ${hostile}`);
  });

  it('escapes commas in key=value options and uses JSON for drives', () => {
    expect(argv).toContain('guest=name=x,,file=/etc/passwd');
    expect(argv).toContain('socket,id=qmp,path=/h,,ome/vms/1/qmp.sock,server=on,wait=off');
    expect(argv).toContain('socket,id=events,path=/h,,ome/vms/1/events.sock,server=on,wait=off');
    expect(argv).toContain('file,id=console,path=/h,,ome/vms/1/console.log');
    const blockdevs = argv.flatMap((a, i) =>
      argv[i - 1] === '-blockdev' ? [JSON.parse(a) as Record<string, unknown>] : [],
    );
    expect(blockdevs).toEqual([
      {
        driver: 'file',
        'node-name': 'file0',
        filename: `/h,ome/images/v/${hostile}`,
        'read-only': false,
      },
      { driver: 'qcow2', 'node-name': 'disk0', file: 'file0', backing: null, 'read-only': false },
      { driver: 'file', 'node-name': 'file1', filename: '/h/images/v/cd.iso', 'read-only': true },
      { driver: 'raw', 'node-name': 'disk1', file: 'file1', 'read-only': true },
    ]);
    expect(argv).toContain('virtio-blk-pci,drive=disk0');
    expect(argv).toContain('ide-cd,drive=disk1');
  });

  it('binds port forwards to loopback only and always runs detached with -nodefaults', () => {
    expect(argv).toContain('user,id=net0,hostfwd=tcp:127.0.0.1:8022-:22');
    for (const flag of ['-nodefaults', '-no-user-config', '-daemonize'])
      expect(argv).toContain(flag);
    expect(argv.slice(argv.indexOf('-accel'), argv.indexOf('-accel') + 2)).toEqual([
      '-accel',
      'tcg',
    ]);
    expect(qemuOptValue('a,,b')).toBe('a,,,,b');
  });

  it('has a guest panic reported and ended as a shutdown, for the supervisor to see', () => {
    expect(argv.slice(argv.indexOf('pvpanic') - 1, argv.indexOf('pvpanic') + 3)).toEqual([
      '-device',
      'pvpanic',
      '-action',
      'panic=shutdown',
    ]);
  });
});

describe('parseVmConfig', () => {
  it('refuses hostile names and control characters before they reach the builder', () => {
    const base = { name: 'ok', cpus: 1, memory: 64, images: [] };
    for (const vm of [
      { ...base, name: hostile },
      { ...base, append: 'console=ttyS0\n-hda /etc/shadow' },
      { ...base, cpus: 0 },
      { ...base, ports: [{ host: 80, guest: 22 }] },
      { ...base, images: [{ volume: 'v', path: 'a\u0000b' }] },
    ]) {
      expect(() => parseVmConfig(vm)).toThrow(SpinError);
    }
    expect(parseVmConfig(base)).toEqual({ ...base, ports: [] });
  });
});
