import type { JsonSchema } from '../core/json-schema.js';
import { schemaParts } from '../agents/action-spec.js';
import { actionRegistry } from '../agents/registry.js';

/** Command ids: a name that reads well in `needs:` lists, logs and file names. */
export const commandIdPattern = '^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}$';
const identifier = '^[a-z][a-z0-9_-]{0,31}$';

/**
 * The JSON Schema (draft 2020-12) of a `*.spin.yaml` package, without the per-action params,
 * which each action validates with its own schema. Strict: no unknown fields anywhere, every
 * string and list bounded.
 */
export const packageSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://spin.dev/schemas/package.schema.json',
  title: 'spin package',
  description: 'A package of commands for `spin apply` (format v1).',
  type: 'object',
  additionalProperties: false,
  required: ['package', 'commands'],
  properties: {
    package: {
      description: 'Unique name of the package; the key in the state file.',
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
    },
    description: { type: 'string', maxLength: 1024 },
    defaults: {
      type: 'object',
      additionalProperties: false,
      properties: {
        timeout: { ...schemaParts.duration, description: 'Per-command timeout: 30s, 2m, 1h.' },
        retries: { type: 'integer', minimum: 0, maximum: 100 },
        node: { type: 'string', pattern: identifier },
      },
    },
    commands: {
      description: 'The commands, keyed by id, in the order they should run where needs allow.',
      type: 'object',
      minProperties: 1,
      maxProperties: 1_000_000,
      propertyNames: { pattern: commandIdPattern },
      additionalProperties: { $ref: '#/$defs/command' },
    },
  },
  $defs: {
    command: {
      type: 'object',
      additionalProperties: false,
      required: ['resource', 'action'],
      properties: {
        resource: {
          type: 'string',
          pattern: identifier,
          description: 'The agent: storage, emulation, shell.',
        },
        action: { type: 'string', pattern: identifier },
        description: { type: 'string', maxLength: 1024 },
        params: { type: 'object', maxProperties: 256 },
        needs: {
          description: 'Ids of commands that must succeed before this one runs.',
          type: 'array',
          maxItems: 10_000,
          items: { type: 'string', pattern: commandIdPattern },
        },
        node: { type: 'string', pattern: identifier },
        timeout: schemaParts.duration,
        retries: { type: 'integer', minimum: 0, maximum: 100 },
        replace: {
          description:
            'allow: a change that cannot be made in place may replace this command even when that deletes data (an image, a volume with files), as --allow-replace does for all.',
          enum: ['allow'],
        },
      },
    },
  },
};

/**
 * The schema for editors (`schemas/package.schema.json`, `spin schema`): the package schema with
 * what the loader checks beyond it written out, so that the YAML language server completes and
 * checks as `spin validate` does. `resource` is an enum; for each resource, `action` is the enum
 * of its actions (with a table of them to read); for each action, `params` is that action's
 * schema, every field with its description and examples. spin's own keywords are dropped.
 */
export function editorSchema(): JsonSchema {
  const resources = [...actionRegistry.keys()];
  const branches: JsonSchema[] = [];
  for (const [resource, actions] of actionRegistry) {
    const table = [
      `Actions of **${resource}**:`,
      '',
      '| action | what it does |',
      '| --- | --- |',
      ...[...actions.values()].map((spec) => `| \`${spec.action}\` | ${spec.description} |`),
    ].join('\n');
    branches.push({
      if: { properties: { resource: { const: resource } }, required: ['resource'] },
      then: {
        properties: {
          action: {
            enum: [...actions.keys()],
            description: `What ${resource} does: ${[...actions.keys()].join(', ')}.`,
            markdownDescription: table,
          },
        },
      },
    });
    for (const [action, spec] of actions) {
      const params = stripSpinKeywords(spec.params) as JsonSchema;
      const required = (spec.params['required'] as string[] | undefined) ?? [];
      branches.push({
        if: {
          properties: { resource: { const: resource }, action: { const: action } },
          required: ['resource', 'action'],
        },
        then: {
          properties: { params: { ...params, description: spec.description } },
          ...(required.length > 0 ? { required: ['params'] } : {}),
        },
      });
    }
  }
  const defs = packageSchema['$defs'] as Record<string, JsonSchema>;
  const command = defs['command'] as JsonSchema & { properties: Record<string, JsonSchema> };
  return {
    ...packageSchema,
    $defs: {
      ...defs,
      command: {
        ...command,
        properties: {
          ...command.properties,
          resource: {
            enum: resources,
            description: `The agent that carries the command out: ${resources.join(', ')}.`,
          },
        },
        allOf: branches,
      },
    },
  };
}

function stripSpinKeywords(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(stripSpinKeywords);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key !== 'spinPath') out[key] = stripSpinKeywords(value);
  }
  return out;
}
