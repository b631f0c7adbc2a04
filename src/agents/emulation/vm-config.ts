import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SpinError } from '../../core/errors.js';
import { vmIdPattern } from '../../core/vm-budget.js';
import type { ActionContext } from '../agent.js';
import { confinePath } from '../confined-path.js';
import { errnoOf } from '../fs-util.js';
import type { Params } from '../params.js';

/** A disk of a VM: an image file in a storage volume. */
export interface VmImage {
  volume: string;
  path: string;
  cdrom: boolean;
}

/** A port forward from 127.0.0.1:host on the host to the guest's port. */
export interface VmPort {
  host: number;
  guest: number;
  protocol: 'tcp' | 'udp';
}

/** A validated VM definition, as stored in `config.json` (field order fixed, for comparison). */
export interface VmConfig {
  name: string;
  cpus: number;
  memory: number;
  images: VmImage[];
  kernel?: string;
  initrd?: string;
  append?: string;
  ports: VmPort[];
}

/** The files of one VM under `$SPIN_HOME/vms/<id>/`. */
export interface VmPaths {
  id: string;
  dir: string;
  config: string;
  qmp: string;
  /** A second QMP monitor, held by the VM's supervisor for its events (see vm-exit.ts). */
  events: string;
  pid: string;
  console: string;
  /** Who supervises the VM and what it saw (see supervision-record.ts). */
  supervision: string;
  /** Held while a start, a restart or a stop's intent changes whether the VM runs (vm-lock.ts). */
  lock: string;
}

// sun_path holds 108 bytes including the terminating NUL.
const maxSocketPath = 107;

function bad(field: string, expected: string): SpinError {
  return new SpinError('invalid_input', `VM field '${field}' must be ${expected}.`, {
    details: { field },
  });
}

function int(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw bad(field, `an integer from ${String(min)} to ${String(max)}`);
  }
  return value;
}

function record(value: unknown, field: string): Params {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad(field, 'an object');
  return value as Params;
}

function list(value: unknown, field: string, max: number): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > max)
    throw bad(field, `a list of at most ${String(max)}`);
  return value;
}

function text(value: unknown, field: string, pattern: RegExp): string {
  if (typeof value !== 'string' || !pattern.test(value))
    throw bad(field, `a string matching ${pattern.source}`);
  return value;
}

const namePattern = /^[a-zA-Z][a-zA-Z0-9_-]{0,62}$/;
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const pathPattern = /^[^\u0000-\u001f]{1,1024}$/;
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const appendPattern = /^[^\u0000-\u001f]{0,2048}$/;
const idPattern = new RegExp(vmIdPattern);

/**
 * Checks a VM definition from a package again (the loader validated it against the schema) and
 * returns it in canonical form. Paths are only shape-checked here; `resolveVmFiles` confines them.
 */
export function parseVmConfig(value: unknown): VmConfig {
  const vm = record(value, 'vm');
  const images = list(vm['images'], 'images', 16).map((item, i) => {
    const image = record(item, `images[${String(i)}]`);
    const cdrom = image['cdrom'] ?? false;
    if (typeof cdrom !== 'boolean') throw bad(`images[${String(i)}].cdrom`, 'true or false');
    return {
      volume: text(image['volume'], `images[${String(i)}].volume`, pathPattern),
      path: text(image['path'], `images[${String(i)}].path`, pathPattern),
      cdrom,
    };
  });
  const ports = list(vm['ports'], 'ports', 32).map((item, i) => {
    const port = record(item, `ports[${String(i)}]`);
    const protocol = port['protocol'] ?? 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp')
      throw bad(`ports[${String(i)}].protocol`, 'tcp or udp');
    return {
      host: int(port['host'], `ports[${String(i)}].host`, 1024, 65_535),
      guest: int(port['guest'], `ports[${String(i)}].guest`, 1, 65_535),
      protocol,
    } satisfies VmPort;
  });
  const config: VmConfig = {
    name: text(vm['name'], 'name', namePattern),
    cpus: int(vm['cpus'], 'cpus', 1, 64),
    memory: int(vm['memory'], 'memory', 16, 1_048_576),
    images,
    ports,
  };
  if (vm['kernel'] !== undefined) config.kernel = text(vm['kernel'], 'kernel', pathPattern);
  if (vm['initrd'] !== undefined) config.initrd = text(vm['initrd'], 'initrd', pathPattern);
  if (vm['append'] !== undefined) config.append = text(vm['append'], 'append', appendPattern);
  return config;
}

/** The VM id of params as a directory name: an integer or a short name. */
export function vmIdOf(params: Params): string {
  const id = params['id'];
  if (typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= 999_999) return String(id);
  if (typeof id === 'string' && idPattern.test(id)) return id;
  throw new SpinError('invalid_input', "Parameter 'id' must be an integer or a short name.");
}

/** The files of VM `id` in its directory `dir`, unchecked (see `vmPaths`). */
export function vmFiles(id: string, dir: string): VmPaths {
  return {
    id,
    dir,
    config: join(dir, 'config.json'),
    qmp: join(dir, 'qmp.sock'),
    events: join(dir, 'events.sock'),
    pid: join(dir, 'qemu.pid'),
    console: join(dir, 'console.log'),
    supervision: join(dir, 'supervision.json'),
    lock: join(dir, 'lifecycle.lock'),
  };
}

/** The confined directory and files of VM `id`; the directory may not exist yet. */
export async function vmPaths(ctx: Pick<ActionContext, 'roots'>, id: string): Promise<VmPaths> {
  const dir = await confinePath(ctx.roots.vms, id, 'name');
  if (dir.kind !== 'missing' && dir.kind !== 'directory') {
    throw new SpinError('invalid_input', `'${id}' under the VM root is not a directory.`);
  }
  const paths = vmFiles(id, dir.path);
  // The longer of the two sockets' paths.
  if (Buffer.byteLength(paths.events) > maxSocketPath) {
    throw new SpinError(
      'invalid_input',
      `The QMP socket path is too long for a unix socket: ${paths.events}`,
      {
        suggestions: ['Use a shorter SPIN_HOME.'],
      },
    );
  }
  return paths;
}

/** The stored config of a VM, or undefined when there is none. */
export async function readVmConfig(paths: VmPaths): Promise<VmConfig | undefined> {
  let raw: string;
  try {
    raw = await readFile(paths.config, 'utf8');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return parseVmConfig(JSON.parse(raw));
  } catch (error) {
    throw new SpinError('state_corrupt', `The stored config of VM ${paths.id} is unreadable.`, {
      cause: error,
    });
  }
}

/** The serialized form of a config: stable, so equal configs compare equal as text. */
export function serializeVmConfig(config: VmConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}
