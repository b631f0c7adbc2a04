import type { ErrorObject } from 'ajv';
import { durationPattern, positiveDurationPattern } from '../core/duration.js';
import type { FieldPath } from './field-path.js';
import { fromJsonPointer } from './field-path.js';
import type { Finding } from './finding.js';
import { didYouMean } from './suggest.js';
import { pathProblem, type PathKind } from '../agents/safe-path.js';

/**
 * Turns ajv's errors into findings that say what was expected, in the words of the schema:
 * `must be an integer >= 1`, `unknown field 'imag'; did you mean 'image'?`. Errors of one field
 * that say the same thing are reported once.
 */
export function schemaFindings(
  errors: readonly ErrorObject[],
  document: unknown,
  prefix: FieldPath = [],
): Finding[] {
  const findings: Finding[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    if (error.propertyName !== undefined) continue; // reported by its propertyNames error
    const at = [...prefix, ...fromJsonPointer(error.instancePath, document)];
    const finding = describe(error, at);
    if (finding === undefined) continue;
    const key = `${JSON.stringify(finding.path)}\u0000${finding.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    findings.push(finding);
  }
  return findings;
}

function describe(error: ErrorObject, at: FieldPath): Finding | undefined {
  const params = error.params as Record<string, unknown>;
  const schema = (error.parentSchema ?? {}) as Record<string, unknown>;
  const value = (message: string): Finding => ({
    path: at,
    atKey: false,
    message,
    reason: 'schema',
  });
  const pathKind = schema['spinPath'] as PathKind | undefined;
  if (pathKind !== undefined && typeof error.data === 'string' && error.keyword !== 'type') {
    const problem =
      pathProblem(error.data, pathKind) ??
      `must be a safe ${pathKind === 'name' ? 'name' : 'relative path'}`;
    return { path: at, atKey: false, message: problem, reason: 'unsafe-path' };
  }
  switch (error.keyword) {
    case 'additionalProperties': {
      const field = String(params['additionalProperty']);
      const known = Object.keys(
        (schema['properties'] as Record<string, unknown> | undefined) ?? {},
      );
      const list = known.length > 0 ? `; expected one of: ${known.join(', ')}` : '';
      const hint = didYouMean(field, known);
      return {
        path: [...at, field],
        atKey: true,
        message: `unknown field '${field}'${hint === '' ? list : hint}`,
        reason: 'schema',
      };
    }
    case 'required':
      return value(`missing required field '${String(params['missingProperty'])}'`);
    case 'propertyNames': {
      const name = String(params['propertyName']);
      const pattern = (schema['propertyNames'] as Record<string, unknown> | undefined)?.['pattern'];
      return {
        path: [...at, name],
        atKey: true,
        message: `invalid name '${name}': must match ${String(pattern)}`,
        reason: 'schema',
      };
    }
    case 'type':
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'enum':
    case 'const':
      return value(`must be ${expected(schema)}`);
    case 'pattern': {
      const words = patternWords[String(params['pattern'])];
      return value(
        words === undefined ? `must match ${String(params['pattern'])}` : `must be ${words}`,
      );
    }
    case 'minLength':
    case 'minItems':
    case 'minProperties':
      return value(
        params['limit'] === 1
          ? 'must not be empty'
          : `must ${verbOf(error.keyword)} at least ${String(params['limit'])} ${limitNoun[error.keyword]}`,
      );
    case 'maxLength':
    case 'maxItems':
    case 'maxProperties':
      return value(
        `must ${verbOf(error.keyword)} at most ${String(params['limit'])} ${limitNoun[error.keyword]}`,
      );
    case 'uniqueItems':
      return value('must not list the same item twice');
    case 'if':
    case 'allOf':
    case 'anyOf':
    case 'oneOf':
      return undefined; // their sub-errors say what is wrong
    default:
      return value(error.message ?? 'is invalid');
  }
}

/** What the size keywords count. */
const limitNoun: Record<string, string> = {
  minLength: 'characters',
  maxLength: 'characters',
  minItems: 'items',
  maxItems: 'items',
  minProperties: 'entries',
  maxProperties: 'entries',
};

/** A string is at most N characters long; a list has at most N items. */
function verbOf(keyword: string): string {
  return keyword.endsWith('Length') ? 'be' : 'have';
}

/** Patterns that read better in words than as a regex. */
const patternWords: Record<string, string> = {
  [durationPattern]: 'a duration such as 500ms, 30s, 5m or 1h (or whole seconds)',
  [positiveDurationPattern]:
    'a duration above zero, such as 500ms, 30s, 5m or 1h (or whole seconds)',
  '^[^\\u0000]*$': 'a string without NUL bytes',
  '^[^\\u0000-\\u001f]*$': 'a string without control characters',
};

/** A string type with a pattern, in words: guards against NUL and control bytes go unsaid. */
function typeWords(pattern: string): string {
  const words = patternWords[pattern];
  if (words === undefined) return `a string matching ${pattern}`;
  return words.startsWith('a string without') ? 'a string' : words;
}

/** Describes what a schema accepts: `an integer >= 1`, `one of raw, qcow2`, `a mapping`. */
export function expected(schema: Record<string, unknown>): string {
  if (Array.isArray(schema['enum'])) return `one of ${schema['enum'].map(String).join(', ')}`;
  if ('const' in schema) return JSON.stringify(schema['const']);
  const raw = schema['type'];
  const types = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? [raw] : [];
  if (types.length === 0) return 'valid';
  return types.map((t) => describeType(t, schema)).join(' or ');
}

function describeType(type: string, schema: Record<string, unknown>): string {
  switch (type) {
    case 'integer':
      return `an integer${range(schema)}`;
    case 'number':
      return `a number${range(schema)}`;
    case 'string':
      return typeof schema['pattern'] === 'string' && schema['spinPath'] === undefined
        ? typeWords(schema['pattern'])
        : 'a string';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'null':
      return 'empty';
    default:
      return type;
  }
}

function range(schema: Record<string, unknown>): string {
  const min = schema['minimum'];
  const max = schema['maximum'];
  if (typeof min === 'number' && typeof max === 'number')
    return ` from ${String(min)} to ${String(max)}`;
  if (typeof min === 'number') return ` >= ${String(min)}`;
  if (typeof max === 'number') return ` <= ${String(max)}`;
  return '';
}
