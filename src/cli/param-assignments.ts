import { findAction } from '../agents/registry.js';
import type { JsonSchema } from '../core/json-schema.js';
import { SpinError } from '../core/errors.js';
import { formatFieldPath } from '../load/field-path.js';
import { schemaFindings } from '../load/schema-findings.js';
import { Validators } from '../load/validators.js';

/**
 * Turns `key=value` words of `spin message add` into an action's params, typed by the action's
 * parameter schema rather than guessed: `image_size=1` is the number 1 because the schema says
 * integer, `name=1` stays the string "1", and object or array params are written as JSON
 * (`vm='{"name":"demo",…}'`). Unknown keys, keys given twice, missing required ones, values of
 * the wrong type and anything `spin validate` would refuse in a file (a pattern, a bound, an
 * unsafe path) are `invalid_input`, all reported at once.
 */
export function parseParamAssignments(
  resource: string,
  action: string,
  words: readonly string[],
): Record<string, unknown> {
  const spec = findAction(resource, action);
  if (spec === undefined) {
    throw new SpinError('invalid_input', `spin has no action ${resource} ${action}`, {
      suggestions: ['see the actions in schemas/package.schema.json'],
    });
  }
  const properties = (spec.params['properties'] ?? {}) as Record<string, JsonSchema>;
  const required = (spec.params['required'] ?? []) as string[];
  const params: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const word of words) {
    const at = word.indexOf('=');
    if (at <= 0) {
      problems.push(`'${word}' is not key=value`);
      continue;
    }
    const key = word.slice(0, at);
    if (Object.hasOwn(params, key)) {
      problems.push(`${key} is given twice`);
      continue;
    }
    const schema = properties[key];
    if (schema === undefined) {
      problems.push(`${resource} ${action} has no parameter '${key}'`);
      continue;
    }
    const value = typedValue(word.slice(at + 1), schema);
    if (value.ok) params[key] = value.value;
    else problems.push(`${key}: ${value.problem}`);
  }
  for (const key of required) {
    if (!(key in params) && !problems.some((p) => p.startsWith(`${key}:`))) {
      problems.push(`${key} is required`);
    }
  }
  if (problems.length === 0) {
    // The checks `spin validate` makes of a file's params (patterns, bounds, safe paths).
    const findings = schemaFindings(Validators.load().validateParams(spec, params), params);
    for (const f of findings) problems.push(`${formatFieldPath(f.path) || 'params'}: ${f.message}`);
  }
  if (problems.length > 0) {
    throw new SpinError(
      'invalid_input',
      `bad params for ${resource} ${action}: ${problems.join('; ')}`,
      {
        details: { problems },
        suggestions: [`parameters of ${resource} ${action}: ${Object.keys(properties).join(', ')}`],
      },
    );
  }
  return params;
}

type Typed = { ok: true; value: unknown } | { ok: false; problem: string };

function typedValue(text: string, schema: JsonSchema): Typed {
  const declared = schema['type'];
  const types = Array.isArray(declared)
    ? (declared as string[])
    : typeof declared === 'string'
      ? [declared]
      : ['string'];
  if (
    (types.includes('integer') || types.includes('number')) &&
    /^-?[0-9]+(\.[0-9]+)?$/.test(text)
  ) {
    const value = Number(text);
    if (types.includes('number') || Number.isInteger(value)) return { ok: true, value };
  }
  if (types.includes('boolean') && (text === 'true' || text === 'false')) {
    return { ok: true, value: text === 'true' };
  }
  if (types.includes('object') || types.includes('array')) {
    try {
      const value: unknown = JSON.parse(text);
      const kind = Array.isArray(value) ? 'array' : typeof value === 'object' ? 'object' : '';
      if (value !== null && types.includes(kind)) return { ok: true, value };
    } catch {
      // Reported below.
    }
    return { ok: false, problem: `expected JSON (${types.join(' or ')}), got ${text}` };
  }
  if (types.includes('string')) return { ok: true, value: text };
  return { ok: false, problem: `expected ${types.join(' or ')}, got '${text}'` };
}
