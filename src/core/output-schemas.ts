import type { ErrorObject } from 'ajv';
import type { JsonSchema } from './json-schema.js';
import { SchemaValidators } from './json-schema.js';

/**
 * The machine output of spin: every document `--output json` prints carries `format_version`
 * (this number) and `kind`, and has a JSON Schema here, written to `schemas/output/<kind>.schema.json`
 * by the build. A change that breaks a reader raises the version.
 */
export const outputFormatVersion = 1;

const str = { type: 'string' } as const;
const int = { type: 'integer', minimum: 0 } as const;
const strings = { type: 'array', items: str } as const;
const planActions = ['create', 'update', 'replace', 'drifted', 'unchanged', 'prune'];
const commandStates = ['succeeded', 'failed', 'skipped', 'cancelled'];

/** Every document: its version and kind. */
function documentOf(
  kind: string,
  title: string,
  properties: Record<string, JsonSchema>,
  required: string[],
): JsonSchema {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `https://spin.dev/schemas/output/${kind}.schema.json`,
    title,
    type: 'object',
    required: ['format_version', 'kind', ...required],
    properties: {
      format_version: { const: outputFormatVersion },
      kind: { const: kind },
      ...properties,
    },
  };
}

const lockHolder: JsonSchema = {
  type: 'object',
  required: ['pid', 'host', 'since', 'command'],
  properties: { pid: { type: 'integer' }, host: str, since: str, command: str },
};

const commandSpec: JsonSchema = {
  type: 'object',
  required: ['id', 'resource', 'action', 'params', 'needs', 'node', 'timeoutMs', 'retries'],
  properties: {
    id: str,
    resource: str,
    action: str,
    params: { type: 'object' },
    needs: strings,
    node: str,
    timeoutMs: int,
    retries: int,
    replace: { const: 'allow' },
  },
};

const diagnostics: JsonSchema = {
  type: 'array',
  items: {
    type: 'object',
    required: ['file', 'line', 'column', 'path', 'message', 'reason'],
    properties: {
      file: str,
      line: int,
      column: int,
      path: str,
      message: str,
      reason: str,
    },
  },
};

const brokerPackageSummary: JsonSchema = {
  type: 'object',
  required: ['id', 'name', 'state', 'commands', 'unfinished'],
  properties: { id: str, name: str, state: str, commands: int, unfinished: int },
};

const eventTypes = [
  'plan',
  'broker',
  'recovered',
  'lock-wait',
  'start',
  'command',
  'interrupted',
  'done',
  'watching',
  'loaded',
  'invalid',
  'missing',
  'unmanaged',
  'apply-start',
  'apply-done',
  'destroy-start',
  'destroyed',
  'reconcile',
  'error',
  'stopped',
  'warning',
];

const logChunk: JsonSchema = {
  type: 'object',
  required: ['kind', 'path'],
  properties: {
    kind: { enum: ['attempt', 'console'] },
    path: str,
    attempt: int,
    lines: { type: 'array' },
    text: str,
    replaced: { type: 'boolean' },
  },
};

const errorBody: JsonSchema = {
  type: 'object',
  required: ['code', 'message', 'exit_code'],
  properties: {
    code: str,
    message: str,
    exit_code: { type: 'integer' },
    suggestions: strings,
    details: { type: 'object' },
    diagnostics,
  },
};

const summary: JsonSchema = {
  type: 'object',
  required: ['succeeded', 'failed', 'skipped', 'cancelled', 'unchanged', 'pruned', 'interrupted'],
  properties: {
    succeeded: int,
    failed: int,
    skipped: int,
    cancelled: int,
    unchanged: int,
    pruned: int,
    interrupted: { type: 'boolean' },
  },
};

/** The schemas of spin's machine output, by kind. */
export const outputSchemas = {
  plan: documentOf(
    'plan',
    'spin plan --output json, spin show, and a saved plan (spin plan --out FILE)',
    {
      created_at: str,
      state: {
        type: 'object',
        required: ['path', 'lineage', 'serial'],
        properties: {
          path: str,
          lineage: { type: ['string', 'null'] },
          serial: int,
          changing: lockHolder,
        },
      },
      options: {
        type: 'object',
        required: ['targets', 'excludes', 'prune'],
        properties: { targets: strings, excludes: strings, prune: { type: 'boolean' } },
      },
      changes: { type: 'boolean' },
      warnings: strings,
      summary: {
        type: 'object',
        required: planActions,
        properties: Object.fromEntries(planActions.map((a) => [a, int])),
      },
      packages: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'file', 'sha256', 'commands', 'items'],
          properties: {
            name: str,
            file: str,
            sha256: { type: ['string', 'null'], pattern: '^[0-9a-f]{64}$' },
            description: str,
            commands: { type: 'array', items: commandSpec },
            items: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'action', 'reason'],
                properties: {
                  id: str,
                  action: { enum: planActions },
                  reason: str,
                  dependents: strings,
                  loses_data: { type: 'boolean' },
                  unmanaged: { type: 'boolean' },
                },
              },
            },
          },
        },
      },
    },
    ['created_at', 'state', 'options', 'changes', 'summary', 'warnings', 'packages'],
  ),
  error: documentOf(
    'error',
    'What any spin command prints with --output json when it fails: on stdout, with the same exit code as without',
    { error: errorBody },
    ['error'],
  ),
  event: documentOf(
    'event',
    'One line of spin apply, destroy or watch with --output json: `type` says which event (see the README)',
    {
      type: { enum: eventTypes },
      at: { type: 'integer' },
      package: str,
      id: str,
      phase: { enum: ['apply', 'prune', 'destroy', 'waiting', 'running', ...commandStates] },
      attempt: int,
      reason: str,
      summary,
    },
    ['type'],
  ),
  validate: documentOf(
    'validate',
    'spin validate --output json',
    {
      valid: { type: 'boolean' },
      packages: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'file', 'commands'],
          properties: { name: str, file: str, commands: int },
        },
      },
      diagnostics,
    },
    ['valid', 'packages', 'diagnostics'],
  ),
  graph: documentOf(
    'graph',
    'spin graph --output json',
    {
      packages: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'file', 'order', 'nodes', 'edges'],
          properties: {
            name: str,
            file: str,
            order: strings,
            nodes: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'resource', 'action'],
                properties: { id: str, resource: str, action: str },
              },
            },
            edges: {
              type: 'array',
              items: {
                type: 'object',
                required: ['from', 'to'],
                properties: { from: str, to: str },
              },
            },
          },
        },
      },
    },
    ['packages'],
  ),
  status: documentOf(
    'status',
    'spin status --output json: the packages of the state with every command, and the daemon',
    {
      serial: int,
      packages: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'file', 'appliedAt', 'commands'],
          properties: {
            name: str,
            file: str,
            appliedAt: str,
            commands: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'resource', 'action', 'status', 'finishedAt', 'attempts'],
                properties: {
                  id: str,
                  resource: str,
                  action: str,
                  status: { enum: commandStates },
                  finishedAt: str,
                  attempts: int,
                  error: str,
                  reason: str,
                  vm: { enum: ['running', 'stopped'] },
                },
              },
            },
          },
        },
      },
      daemon: {},
    },
    ['serial', 'packages'],
  ),
  'daemon-status': documentOf(
    'daemon-status',
    'spin daemon status --output json (no daemon: an error document, exit 4)',
    {
      running: { const: true },
      pid: { type: 'integer' },
      home: str,
      version: str,
      startedAt: { type: 'integer' },
      ui: { type: 'object', required: ['url'], properties: { url: str } },
      unfinishedPackages: { type: 'array', items: brokerPackageSummary },
    },
    ['running', 'pid', 'home', 'version', 'startedAt', 'unfinishedPackages'],
  ),
  'message-status': documentOf(
    'message-status',
    'spin message status --output json: a broker package with every command',
    {
      id: str,
      name: str,
      state: str,
      createdAt: { type: 'integer' },
      commands: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id', 'resource', 'action', 'node', 'needs', 'state', 'attempt'],
          properties: {
            id: str,
            resource: str,
            action: str,
            node: str,
            needs: strings,
            state: str,
            attempt: int,
            reason: str,
          },
        },
      },
      failures: { type: 'array' },
    },
    ['id', 'name', 'state', 'createdAt', 'commands', 'failures'],
  ),
  'message-list': documentOf(
    'message-list',
    'spin message list --output json',
    { packages: { type: 'array', items: brokerPackageSummary } },
    ['packages'],
  ),
  logs: documentOf(
    'logs',
    "spin logs --output json: what was selected of a command's attempts or a VM's console",
    {
      source: { enum: ['attempts', 'console'] },
      package: str,
      command: str,
      vm: str,
      chunks: { type: 'array', items: logChunk },
      quiet: str,
    },
    ['source', 'chunks'],
  ),
  'log-chunk': documentOf(
    'log-chunk',
    'One line of spin logs --follow --output json',
    { chunk: logChunk },
    ['chunk'],
  ),
  import: documentOf(
    'import',
    'spin import --output json',
    {
      commands: {
        type: 'array',
        items: {
          type: 'object',
          required: ['package', 'id', 'result'],
          properties: {
            package: str,
            id: str,
            result: { enum: ['imported', 'absent', 'managed'] },
            observed: { type: 'object' },
          },
        },
      },
    },
    ['commands'],
  ),
  nodes: documentOf(
    'nodes',
    "spin nodes --output json: the fleet's nodes as the coordinator knows them from their heartbeats",
    {
      nodes: {
        type: 'array',
        items: {
          type: 'object',
          required: [
            'name',
            'state',
            'firstSeenAt',
            'lastHeartbeatAt',
            'intervalMs',
            'resources',
            'capacity',
            'use',
            'host',
          ],
          properties: {
            name: str,
            state: { enum: ['online', 'offline'] },
            firstSeenAt: { type: 'integer' },
            lastHeartbeatAt: { type: 'integer' },
            offlineSince: { type: 'integer' },
            intervalMs: int,
            resources: strings,
            capacity: {
              type: 'object',
              required: ['cpus', 'memoryBytes', 'diskFreeBytes', 'diskTotalBytes'],
              properties: { cpus: int, memoryBytes: int, diskFreeBytes: int, diskTotalBytes: int },
            },
            use: {
              type: 'object',
              required: ['load1', 'memoryUsedBytes', 'running', 'vms'],
              properties: {
                load1: { type: 'number' },
                memoryUsedBytes: int,
                running: int,
                vms: int,
              },
            },
            admission: {
              type: 'object',
              description:
                "what the node's VM admission counts, as its last heartbeat reported it (absent from agents that could not count their VMs, or older ones)",
              required: ['capacity', 'vms', 'policy'],
              properties: {
                capacity: {
                  type: 'object',
                  required: ['cpus', 'memoryMib', 'availableMib'],
                  properties: {
                    cpus: { type: 'number', minimum: 0 },
                    memoryMib: int,
                    availableMib: int,
                  },
                },
                vms: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['id', 'cpus', 'memoryMib', 'residentMib'],
                    properties: { id: str, cpus: int, memoryMib: int, residentMib: int },
                  },
                },
                policy: {
                  type: 'object',
                  required: ['cpuOvercommit', 'memoryOvercommit', 'reserveMemoryMib'],
                  properties: {
                    cpuOvercommit: { type: 'number', minimum: 1 },
                    memoryOvercommit: { type: 'number', minimum: 1 },
                    reserveMemoryMib: int,
                  },
                },
              },
            },
            freeForVms: {
              type: 'object',
              description:
                "what VM starts may still take of the node under its agent's own policy, from its last heartbeat (absent when it is offline or reported no capacity)",
              required: ['cpus', 'memoryMib'],
              properties: { cpus: { type: 'number', minimum: 0 }, memoryMib: int },
            },
            host: str,
            pid: { type: 'integer' },
          },
        },
      },
    },
    ['nodes'],
  ),
} satisfies Record<string, JsonSchema>;

export type OutputKind = keyof typeof outputSchemas;

let validators: SchemaValidators | undefined;

/** What is wrong with `data` as a document of `kind`, as lines; empty when it matches. */
export function checkOutput(kind: OutputKind, data: unknown): string[] {
  validators ??= SchemaValidators.load(
    new URL('./compiled-output-validators.cjs', import.meta.url),
    'package',
  );
  return validators
    .check(`output-${kind}`, outputSchemas[kind], data)
    .map((e: ErrorObject) => `${e.instancePath || '(document)'} ${e.message ?? 'is invalid'}`);
}
