import { defineAction, schemaParts } from '../action-spec.js';
import { healthSchema, restartSchema } from './supervision-specs.js';

/**
 * The emulation agent (qemu): a VM is a stored config under `$SPIN_HOME/vms/<id>/`, started and
 * stopped as a real qemu process. Every field here is validated and later placed into qemu's
 * argv by spin itself: nothing a package says becomes a raw qemu flag.
 */
const resource = 'emulation';
const { name, relativePath, duration, vmId } = schemaParts;

const vm = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'cpus', 'memory', 'images'],
  properties: {
    name: { type: 'string', pattern: '^[a-zA-Z][a-zA-Z0-9_-]*$', minLength: 1, maxLength: 63 },
    cpus: { type: 'integer', minimum: 1, maximum: 64 },
    memory: { type: 'integer', minimum: 16, maximum: 1_048_576, description: 'MiB' },
    images: {
      type: 'array',
      maxItems: 16,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['volume', 'path'],
        properties: { volume: name, path: name, cdrom: { type: 'boolean' } },
      },
    },
    kernel: { ...relativePath, description: 'kernel, relative to the images root' },
    initrd: { ...relativePath, description: 'initrd, relative to the images root' },
    append: { type: 'string', maxLength: 2048, pattern: '^[^\\u0000-\\u001f]*$' },
    ports: {
      type: 'array',
      maxItems: 32,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['host', 'guest'],
        properties: {
          host: { type: 'integer', minimum: 1024, maximum: 65_535 },
          guest: { type: 'integer', minimum: 1, maximum: 65_535 },
          protocol: { enum: ['tcp', 'udp'] },
        },
      },
    },
  },
};

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
    properties: { id: vmId, vm },
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
    properties: { id: vmId },
    required: ['id'],
  }),
  defineAction({
    resource,
    action: 'start',
    description: 'Start the VM; optionally wait until its console matches ready_when.',
    properties: {
      id: vmId,
      ready_when: { type: 'string', minLength: 1, maxLength: 256 },
      ready_timeout: duration,
      restart: restartSchema,
      health: healthSchema,
    },
    required: ['id'],
    inverse: 'stop',
    claims: (p) => [`running vm ${String(p['id'])}`],
    rerunsAfterNeeds: 'restart (config changed)',
    changesInPlace: ['ready_when', 'ready_timeout'],
  }),
  defineAction({
    resource,
    action: 'stop',
    description: 'ACPI powerdown, then QMP quit after timeout (default 30s), then SIGKILL.',
    properties: { id: vmId, timeout: duration },
    required: ['id'],
  }),
];
