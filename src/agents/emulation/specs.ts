import { defineAction, documented, schemaParts } from '../action-spec.js';
import { healthSchema, restartSchema } from './supervision-specs.js';

/**
 * The emulation agent (qemu): a VM is a stored config under `$SPIN_HOME/vms/<id>/`, started and
 * stopped as a real qemu process. Every field here is validated and later placed into qemu's
 * argv by spin itself: nothing a package says becomes a raw qemu flag.
 */
const resource = 'emulation';
const { name, relativePath, duration, vmId } = schemaParts;

const id = documented(
  vmId,
  'The VM: a number (0–999999) or a short name; its files are $SPIN_HOME/vms/<id>/.',
  [1, 'web'],
);

const vm = documented(
  {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'cpus', 'memory', 'images'],
    properties: {
      name: documented(
        { type: 'string', pattern: '^[a-zA-Z][a-zA-Z0-9_-]*$', minLength: 1, maxLength: 63 },
        "The guest's name, as qemu shows it.",
        ['web'],
      ),
      cpus: documented(
        { type: 'integer', minimum: 1, maximum: 64 },
        'Virtual CPUs, 1 to 64.',
        [1, 2],
      ),
      memory: documented(
        { type: 'integer', minimum: 16, maximum: 1_048_576 },
        'Memory in MiB, 16 to 1048576.',
        [256, 2048],
      ),
      images: documented(
        {
          type: 'array',
          maxItems: 16,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['volume', 'path'],
            properties: {
              volume: documented(name, 'The volume of the disk image.', ['data']),
              path: documented(name, 'The image file in the volume.', ['disk.raw']),
              cdrom: documented({ type: 'boolean' }, 'Attach it as a read-only CD-ROM.'),
            },
          },
        },
        'Disks, in boot order: images of storage volumes.',
      ),
      kernel: documented(relativePath, 'A kernel to boot directly, relative to the images root.', [
        'guest/vmlinuz',
      ]),
      initrd: documented(relativePath, 'Its initrd, relative to the images root.', [
        'guest/initrd.cpio.gz',
      ]),
      append: documented(
        { type: 'string', maxLength: 2048, pattern: '^[^\\u0000-\\u001f]*$' },
        'The kernel command line (with kernel).',
        ['console=ttyS0 quiet'],
      ),
      ports: documented(
        {
          type: 'array',
          maxItems: 32,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['host', 'guest'],
            properties: {
              host: documented(
                { type: 'integer', minimum: 1024, maximum: 65_535 },
                'The port on 127.0.0.1 of the host (1024–65535).',
                [2222],
              ),
              guest: documented(
                { type: 'integer', minimum: 1, maximum: 65_535 },
                'The port in the guest.',
                [22],
              ),
              protocol: documented({ enum: ['tcp', 'udp'], default: 'tcp' }, 'tcp or udp.'),
            },
          },
        },
        'Ports forwarded from 127.0.0.1 of the host into the guest.',
      ),
    },
  },
  'The VM: CPUs, memory, disks, and optionally a kernel to boot and forwarded ports.',
);

/** The forwarded ports of a `vm` param (the schema has checked its shape). */
function portsOf(vmParam: unknown): { host: number; protocol?: string }[] {
  const ports = (vmParam as { ports?: unknown } | undefined)?.ports;
  return Array.isArray(ports) ? (ports as { host: number; protocol?: string }[]) : [];
}

export const emulationSpecs = [
  defineAction({
    resource,
    action: 'write_config',
    description: 'Store the definition of a VM.',
    properties: { id, vm },
    required: ['id', 'vm'],
    inverse: 'remove_config',
    claims: (p) => [
      `vm ${String(p['id'])}`,
      ...portsOf(p['vm']).map((port) => `host port ${port.protocol ?? 'tcp'}/${String(port.host)}`),
    ],
    // The config is rewritten; a VM started from it is restarted (see start).
    changesInPlace: ['vm'],
  }),
  defineAction({
    resource,
    action: 'remove_config',
    description: 'Remove the definition of a stopped VM.',
    properties: { id },
    required: ['id'],
  }),
  defineAction({
    resource,
    action: 'start',
    description: 'Start the VM; optionally wait until its console matches ready_when.',
    properties: {
      id,
      ready_when: documented(
        { type: 'string', minLength: 1, maxLength: 256 },
        'A regular expression: the start succeeds once the serial console matches it.',
        ['login:', 'SPIN-TINY-VM-READY'],
      ),
      ready_timeout: documented(duration, 'How long to wait for ready_when (default 2m).', ['60s']),
      restart: restartSchema,
      health: healthSchema,
    },
    required: ['id'],
    inverse: 'stop',
    claims: (p) => [`running vm ${String(p['id'])}`],
    rerunsAfterNeeds: 'restart (config changed)',
    // A new restart or health block applies to the running VM: it is not restarted for it.
    changesInPlace: ['ready_when', 'ready_timeout', 'restart', 'health'],
  }),
  defineAction({
    resource,
    action: 'stop',
    description: 'ACPI powerdown, then QMP quit after timeout (default 30s), then SIGKILL.',
    properties: {
      id,
      timeout: documented(
        duration,
        'How long ACPI powerdown may take before QMP quit (default 30s).',
        ['30s'],
      ),
    },
    required: ['id'],
  }),
];
