import type { ErrorObject } from 'ajv';
import type {
  AckResult,
  AttemptRef,
  CommandInput,
  NewPackageOptions,
} from '../broker/broker-types.js';
import { defaults } from '../core/defaults.js';
import { SpinError } from '../core/errors.js';
import { SchemaValidators, type JsonSchema } from '../core/json-schema.js';
import { vmIdPattern } from '../core/vm-budget.js';
import type { Heartbeat } from './node-registry.js';

/**
 * Checks of what arrives over the daemon's socket, before anything reaches the store: a request
 * that fails them gets a 4xx naming the field, and changes nothing. Only the shape is checked
 * here, with the same validator (ajv) as package files; the store applies the broker's rules.
 * Each schema's `description` completes the sentence "… must be", which is the error message.
 */

const day = 86_400_000;

const text = (max: number): JsonSchema => ({
  type: 'string',
  minLength: 1,
  maxLength: max,
  description: `a non-empty string of at most ${max.toLocaleString('en')} characters`,
});
const count = (max: number): JsonSchema => ({
  type: 'integer',
  minimum: 0,
  maximum: max,
  description: `an integer from 0 to ${max.toLocaleString('en')}`,
});
const amount = (min: number, max: number): JsonSchema => ({
  type: 'number',
  minimum: min,
  maximum: max,
  description: `a number from ${min.toLocaleString('en')} to ${max.toLocaleString('en')}`,
});
const object = (schema: JsonSchema): JsonSchema => ({
  type: 'object',
  additionalProperties: false,
  description: 'a JSON object',
  ...schema,
});
const flag = { type: 'boolean', description: 'true or false' };

const attemptRef = object({
  required: ['packageId', 'commandId', 'attemptId'],
  properties: { packageId: text(256), commandId: text(256), attemptId: text(256) },
});

const ackResult = object({
  required: ['ok'],
  properties: {
    ok: flag,
    output: {},
    retryable: flag,
    error: object({
      required: ['code', 'message'],
      properties: {
        code: text(64),
        message: text(64 * 1024),
        details: { type: 'object', description: 'a JSON object' },
      },
    }),
  },
});

const heartbeatSchema = object({
  required: ['resources', 'capacity', 'use', 'intervalMs', 'host', 'pid'],
  properties: {
    resources: {
      type: 'array',
      items: text(64),
      maxItems: 16,
      description: 'an array of resources',
    },
    capacity: object({
      required: ['cpus', 'memoryBytes', 'diskFreeBytes', 'diskTotalBytes'],
      properties: {
        cpus: count(1_000_000),
        memoryBytes: count(Number.MAX_SAFE_INTEGER),
        diskFreeBytes: count(Number.MAX_SAFE_INTEGER),
        diskTotalBytes: count(Number.MAX_SAFE_INTEGER),
      },
    }),
    use: object({
      required: ['load1', 'memoryUsedBytes', 'running', 'vms'],
      properties: {
        load1: { type: 'number', minimum: 0, description: 'a number ≥ 0' },
        memoryUsedBytes: count(Number.MAX_SAFE_INTEGER),
        running: count(1_000_000),
        vms: count(1_000_000),
      },
    }),
    admission: object({
      required: ['capacity', 'vms', 'policy'],
      properties: {
        capacity: object({
          required: ['cpus', 'memoryMib', 'availableMib'],
          properties: {
            cpus: amount(0, 1_000_000),
            memoryMib: count(Number.MAX_SAFE_INTEGER),
            availableMib: count(Number.MAX_SAFE_INTEGER),
          },
        }),
        vms: {
          type: 'array',
          maxItems: 100_000,
          items: object({
            required: ['id', 'cpus', 'memoryMib', 'residentMib'],
            properties: {
              id: {
                type: 'string',
                pattern: vmIdPattern,
                description: 'a VM id: an integer or a short name',
              },
              cpus: count(1_000_000),
              memoryMib: count(Number.MAX_SAFE_INTEGER),
              residentMib: count(Number.MAX_SAFE_INTEGER),
            },
          }),
          description: 'an array of at most 100,000 VMs',
        },
        policy: object({
          required: ['cpuOvercommit', 'memoryOvercommit', 'reserveMemoryMib'],
          properties: {
            cpuOvercommit: amount(1, 100),
            memoryOvercommit: amount(1, 100),
            reserveMemoryMib: count(Number.MAX_SAFE_INTEGER),
          },
        }),
      },
    }),
    intervalMs: { ...count(day), minimum: 10 },
    host: text(256),
    pid: count(Number.MAX_SAFE_INTEGER),
  },
});

/** The wire schemas, by validator key; the build compiles them ahead of time. */
export const wireSchemas = {
  /** The body of `POST /v1/packages`. */
  'new-package': object({
    properties: {
      name: text(256),
      ttlMs: count(7 * day),
      owned: flag,
      meta: { type: 'object', description: 'a JSON object' },
    },
  }),
  /** The body of `POST /v1/packages/:id/commands`: `{commands: [...]}`. */
  'command-inputs': object({
    required: ['commands'],
    properties: {
      commands: {
        type: 'array',
        minItems: 1,
        maxItems: 10_000,
        description: 'an array of 1 to 10,000 commands',
        items: object({
          required: ['resource', 'action'],
          properties: {
            id: text(128),
            resource: text(256),
            action: text(256),
            params: { type: 'object', default: {}, description: 'a JSON object' },
            needs: {
              type: 'array',
              items: { type: 'string' },
              default: [],
              description: 'an array of command ids',
            },
            node: { ...text(256), default: defaults.command.node },
            timeoutMs: { ...count(day), default: defaults.command.timeoutMs },
            retries: { ...count(100), default: defaults.command.retries },
          },
        }),
      },
    },
  }),
  /** The body of `POST /v1/states`: a state file's path and lineage. */
  'state-claim': object({
    required: ['path', 'lineage'],
    properties: { path: text(4096), lineage: text(256), adopt: { ...flag, default: false } },
  }),
  /** One line of an agent connection. */
  'agent-request': object({
    required: ['id', 'op'],
    properties: {
      id: { type: 'integer', description: 'an integer' },
      op: {
        enum: ['lease', 'renew', 'ack', 'release'],
        description: 'lease, renew, ack or release',
      },
      waitMs: { ...count(defaults.command.timeoutMs), default: 0 },
      ref: attemptRef,
      result: ackResult,
      next: { ...flag, default: false },
      // Over NATS, where no connection carries them, each request names its queue and lease.
      resource: text(256),
      leaseMs: count(day),
      holder: text(256),
      succeeds: text(256),
    },
    allOf: [
      {
        if: { properties: { op: { enum: ['renew', 'ack', 'release'] } } },
        then: { properties: { ref: true }, required: ['ref'] },
      },
      {
        if: { properties: { op: { const: 'ack' } } },
        then: { properties: { result: true }, required: ['result'] },
      },
    ],
  }),
  /** A node's heartbeat over NATS. */
  heartbeat: heartbeatSchema,
} satisfies Record<string, JsonSchema>;

type WireKey = keyof typeof wireSchemas;

/** Where the build writes the wire validators (see SchemaValidators). */
export const compiledWireValidatorsFile = new URL(
  './compiled-wire-validators.cjs',
  import.meta.url,
);

let validators: SchemaValidators | undefined;

/** Validates `value` against a wire schema, filling in its defaults; refuses it naming the field. */
function check(key: WireKey, value: unknown, what: string): void {
  validators ??= SchemaValidators.load(compiledWireValidatorsFile, 'wire');
  const errors = validators.check(key, wireSchemas[key], value).filter((e) => e.keyword !== 'if'); // its `then` reports the field itself
  if (errors.length > 0) {
    throw new SpinError(
      'invalid_input',
      errors
        .slice(0, 3)
        .map((e) => describe(e, what))
        .join('; '),
      {
        details: { fields: errors.map((e) => fieldOf(e, what)) },
      },
    );
  }
}

/** `/commands/0/action` under `body` → `body.commands[0].action`. */
function fieldOf(error: ErrorObject, what: string): string {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => (/^[0-9]+$/.test(part) ? `[${part}]` : `.${part}`))
    .join('');
  const missing = (error.params as Record<string, unknown>)['missingProperty'];
  return `${what}${path}${typeof missing === 'string' ? `.${missing}` : ''}`;
}

function describe(error: ErrorObject, what: string): string {
  const field = fieldOf(error, what);
  if (error.keyword === 'required') return `${field} is required`;
  const schema = error.parentSchema as { description?: unknown } | undefined;
  return typeof schema?.description === 'string'
    ? `${field} must be ${schema.description}`
    : `${field} ${error.message ?? 'is invalid'}`;
}

/** The body of `POST /v1/packages`. */
export function parseNewPackage(body: unknown): NewPackageOptions {
  const value: unknown = body ?? {};
  check('new-package', value, 'body');
  return value as NewPackageOptions;
}

/** The body of `POST /v1/packages/:id/commands`: `{commands: [...]}`, at most 10,000 of them. */
export function parseCommandInputs(body: unknown): CommandInput[] {
  check('command-inputs', body, 'body');
  return (body as { commands: CommandInput[] }).commands;
}

/** The body of `POST /v1/states`. */
export function parseStateClaim(body: unknown): { path: string; lineage: string; adopt: boolean } {
  check('state-claim', body, 'body');
  return body as { path: string; lineage: string; adopt: boolean };
}

/** One request on an agent connection. */
export type AgentRequest = (
  | { id: number; op: 'lease'; waitMs: number }
  | { id: number; op: 'renew'; ref: AttemptRef }
  | { id: number; op: 'ack'; ref: AttemptRef; result: AckResult; next: boolean }
  | { id: number; op: 'release'; ref: AttemptRef }
) & { resource?: string; leaseMs?: number; holder?: string; succeeds?: string };

/** Parses one line of an agent connection (the caller reads its id even when the rest is bad). */
export function parseAgentRequest(value: unknown): AgentRequest {
  check('agent-request', value, 'request');
  return value as AgentRequest;
}

/** A node's heartbeat (`spin.<fleet>.node.<node>.heartbeat`). */
export function parseHeartbeat(body: unknown): Heartbeat {
  check('heartbeat', body, 'heartbeat');
  return body as Heartbeat;
}
