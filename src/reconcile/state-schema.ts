import type { ErrorObject } from 'ajv';
import { SchemaValidators, type JsonSchema } from '../core/json-schema.js';

/**
 * The JSON Schema of the state file (src/core/state-types.ts as a schema), checked on every load
 * so that a damaged file is refused naming the field, before any code reads a field of it.
 * Each `description` completes the sentence "… must be", which is the error message. Fields
 * spin does not know are allowed (a later spin of the same version may add optional ones);
 * missing, mistyped and out-of-range ones are not.
 */

const text = { type: 'string', description: 'a string' };
const name = { type: 'string', minLength: 1, description: 'a non-empty string' };
const count = { type: 'integer', minimum: 0, description: 'an integer >= 0' };
const object = { type: 'object', description: 'a JSON object' };
const record = (schema: JsonSchema): JsonSchema => ({ ...object, ...schema });

const commandRecord = record({
  required: [
    'resource',
    'action',
    'node',
    'params',
    'needs',
    'specHash',
    'status',
    'attempts',
    'output',
    'serial',
    'finishedAt',
  ],
  properties: {
    resource: name,
    action: name,
    node: name,
    params: object,
    needs: { type: 'array', items: name, description: 'an array of command ids' },
    specHash: name,
    status: {
      enum: ['succeeded', 'failed', 'skipped', 'cancelled'],
      description: 'succeeded, failed, skipped or cancelled',
    },
    attempts: count,
    output: text,
    error: record({
      required: ['code', 'message'],
      properties: { code: name, message: text, details: object },
    }),
    reason: text,
    observed: object,
    serial: count,
    startedAt: text,
    finishedAt: text,
  },
});

const packageRecord = record({
  required: ['file', 'appliedAt', 'commands'],
  properties: {
    file: text,
    appliedAt: text,
    commands: { ...object, additionalProperties: commandRecord },
  },
});

/** The schema of a whole state file, version 1; the build compiles it ahead of time. */
export const stateSchema: JsonSchema = record({
  required: ['format', 'version', 'lineage', 'serial', 'packages'],
  properties: {
    format: { const: 'spin-state', description: '"spin-state"' },
    version: { const: 1, description: '1' },
    lineage: name,
    serial: count,
    journalSeq: count,
    packages: { ...object, additionalProperties: packageRecord },
  },
});

/** The key of the state validator in its compiled file. */
export const stateValidatorKey = 'state';

/** Where the build writes the state validator (see SchemaValidators and build-validators.js). */
export const compiledStateValidatorsFile = new URL(
  './compiled-state-validators.cjs',
  import.meta.url,
);

/** One structural problem of a state document: the field, as a path, and what it must be. */
export interface StateProblem {
  /** `packages.r3.commands.v.status`; `packages["a b"]` for keys that are not identifiers. */
  field: string;
  message: string;
}

let validators: SchemaValidators | undefined;

/**
 * The structural problems of `data` (parsed JSON) as a state file, in the order the schema
 * finds them; empty when it matches. Never changes `data`.
 */
export function stateProblems(data: unknown): StateProblem[] {
  validators ??= SchemaValidators.load(compiledStateValidatorsFile, 'package');
  return validators.check(stateValidatorKey, stateSchema, data).map(describe);
}

function describe(error: ErrorObject): StateProblem {
  const params = error.params as Record<string, unknown>;
  const missing = params['missingProperty'];
  if (error.keyword === 'required' && typeof missing === 'string') {
    return { field: fieldOf(error.instancePath, missing), message: 'is missing' };
  }
  const schema = error.parentSchema as { description?: unknown } | undefined;
  const shown = JSON.stringify(error.data) as string | undefined;
  const was =
    shown === undefined ? '' : ` (it is ${shown.length > 40 ? typeOf(error.data) : shown})`;
  return {
    field: fieldOf(error.instancePath),
    message:
      typeof schema?.description === 'string'
        ? `must be ${schema.description}${was}`
        : `${error.message ?? 'is invalid'}${was}`,
  };
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** ajv's JSON pointer (`/packages/a~1b/commands/v`), plus a missing key, as a field path. */
function fieldOf(pointer: string, missing?: string): string {
  const steps = pointer === '' ? [] : pointer.slice(1).split('/').map(unescapePointer);
  if (missing !== undefined) steps.push(missing);
  let out = '';
  for (const step of steps) {
    out += /^[A-Za-z_$][\w$-]*$/.test(step)
      ? `${out === '' ? '' : '.'}${step}`
      : `[${JSON.stringify(step)}]`;
  }
  return out === '' ? '(the whole file)' : out;
}

const unescapePointer = (step: string): string => step.replaceAll('~1', '/').replaceAll('~0', '~');
