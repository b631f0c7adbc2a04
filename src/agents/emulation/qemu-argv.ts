import type { ImageFormat } from '../storage/image-file.js';
import type { VmConfig, VmPaths } from './vm-config.js';

/** The accelerators spin runs qemu with. */
export type Accel = 'kvm' | 'tcg';

/** A disk resolved to a confined file and its detected format. */
export interface ResolvedDrive {
  file: string;
  format: ImageFormat;
  cdrom: boolean;
}

/** Everything `buildQemuArgv` needs: the config, its resolved files, paths and accelerator. */
export interface QemuLaunch {
  config: VmConfig;
  paths: VmPaths;
  accel: Accel;
  drives: ResolvedDrive[];
  kernel?: string;
  initrd?: string;
}

/** Escapes a value for qemu's `key=value,…` option syntax: a comma is written twice. */
export function qemuOptValue(value: string): string {
  return value.replaceAll(',', ',,');
}

/**
 * The argv of `qemu-system-x86_64` for a VM, as an array (never a shell string). Every flag is
 * chosen here; values from the package only ever appear as option values: escaped inside
 * `key=value` lists, inside JSON for `-blockdev` (which needs no escaping), or as the whole
 * argument of a flag that takes one value (`-kernel`, `-initrd`, `-append`, `-pidfile`). Two
 * QMP monitors: `qmp.sock` for commands (status, stop) and `events.sock`, which the VM's
 * supervisor holds open to hear how it ends. qcow2
 * drives are opened with `backing: null`, so an image cannot pull in a file outside the root.
 */
export function buildQemuArgv(launch: QemuLaunch): string[] {
  const { config, paths } = launch;
  const argv = [
    '-name', `guest=${qemuOptValue(config.name)}`,
    '-machine', 'pc',
    '-accel', launch.accel,
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    '-m', String(config.memory),
    '-smp', String(config.cpus),
    '-chardev', `socket,id=qmp,path=${qemuOptValue(paths.qmp)},server=on,wait=off`,
    '-mon', 'chardev=qmp,mode=control',
    '-chardev', `socket,id=events,path=${qemuOptValue(paths.events)},server=on,wait=off`,
    '-mon', 'chardev=events,mode=control',
    '-chardev', `file,id=console,path=${qemuOptValue(paths.console)}`,
    '-serial', 'chardev:console',
    '-pidfile', paths.pid,
    '-daemonize',
    // A guest's kernel panic reaches qemu (GUEST_PANICKED), and qemu then ends as for a poweroff
    // (SHUTDOWN, reason guest-panic), so the supervisor sees it rather than a hung guest.
    '-device', 'pvpanic',
    '-action', 'panic=shutdown',
  ]; // prettier-ignore
  launch.drives.forEach((drive, i) => {
    const file = {
      driver: 'file',
      'node-name': `file${String(i)}`,
      filename: drive.file,
      'read-only': drive.cdrom,
    };
    const format =
      drive.format === 'qcow2'
        ? {
            driver: 'qcow2',
            'node-name': `disk${String(i)}`,
            file: `file${String(i)}`,
            backing: null,
            'read-only': drive.cdrom,
          }
        : {
            driver: 'raw',
            'node-name': `disk${String(i)}`,
            file: `file${String(i)}`,
            'read-only': drive.cdrom,
          };
    argv.push('-blockdev', JSON.stringify(file), '-blockdev', JSON.stringify(format));
    argv.push(
      '-device',
      drive.cdrom ? `ide-cd,drive=disk${String(i)}` : `virtio-blk-pci,drive=disk${String(i)}`,
    );
  });
  const forwards = config.ports.map(
    (p) => `,hostfwd=${p.protocol}:127.0.0.1:${String(p.host)}-:${String(p.guest)}`,
  );
  argv.push('-netdev', `user,id=net0${forwards.join('')}`);
  argv.push('-device', 'virtio-net-pci,netdev=net0,romfile=');
  if (launch.kernel !== undefined) argv.push('-kernel', launch.kernel);
  if (launch.initrd !== undefined) argv.push('-initrd', launch.initrd);
  if (config.append !== undefined) argv.push('-append', config.append);
  return argv;
}
