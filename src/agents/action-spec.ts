import type { JsonSchema } from '../core/json-schema.js';
import { pathPatterns } from './safe-path.js';

/**
 * What an agent action publishes about itself before anything runs: its parameter schema (JSON
 * Schema, draft 2020-12, strict), the action that undoes it, and a line of help. The loader
 * validates every command's params against `params`; the executor later pairs each spec with
 * its implementation. Specs are plain data, so loading them costs no more than a literal.
 *
 * A string property may carry the annotation `spinPath: 'name' | 'relative'` next to the pattern
 * of that kind (see safe-path.ts); the loader then explains a mismatch in words.
 */
export interface ActionSpec {
  resource: string;
  action: string;
  description: string;
  params: JsonSchema;
  /** The action that undoes this one, for prune and destroy; absent when nothing needs undoing. */
  inverse?: string;
  /**
   * What a command of this action holds on its node once it succeeded, as keys such as
   * `volume data` or `vm 1`: the package whose command holds a key owns it, and no other package
   * may claim it (see src/plan/ownership.ts). Absent when the action holds nothing.
   */
  claims?: (params: Readonly<Record<string, unknown>>) => string[];
  /**
   * Why the command runs again when a command it needs runs (a VM started from a config that
   * changed is restarted): the plan's reason, e.g. `restart (config changed)`. Absent when
   * such a change leaves it as it is.
   */
  rerunsAfterNeeds?: string;
  /**
   * For an action with an inverse: the params a changed command carries out in place (it runs
   * again with the new values). A change to any other param, or to its node, replaces the
   * command: what it made is undone through the inverse, then it runs anew (see
   * src/plan/plan.ts). Absent: every change replaces.
   */
  changesInPlace?: readonly string[];
  /**
   * A change of an in-place param that still needs a replace (an image cannot shrink in place):
   * the reason, such as `params.image_size shrinks from 2 to 1 GiB`; undefined when it can.
   */
  cannotChangeInPlace?: (
    before: Readonly<Record<string, unknown>>,
    after: Readonly<Record<string, unknown>>,
  ) => string | undefined;
  /**
   * Whether undoing what a command made loses data, given what `observe` sees of it now (an image
   * always, a volume while it has entries): a replace of such a command needs `--allow-replace`
   * or the command's `replace: allow`. Absent: nothing is lost.
   */
  holdsData?: (observed: Readonly<Record<string, unknown>>) => boolean;
}

/** Declares an action spec with a strict object schema for its params. */
export function defineAction(
  spec: Omit<ActionSpec, 'params'> & { properties: Record<string, JsonSchema>; required: string[] },
): ActionSpec {
  const params: JsonSchema = {
    type: 'object',
    additionalProperties: false,
    properties: spec.properties,
    required: spec.required,
  };
  const { properties, required, ...rest } = spec;
  return { ...rest, params };
}

/**
 * A property schema with the words an editor shows for it: `description` (hover and completion
 * detail) and `examples` (offered as completions). Every param of every action has them, so the
 * published schema explains each field (a test checks it).
 */
export function documented<const T extends JsonSchema>(
  part: T,
  description: string,
  examples?: readonly unknown[],
): T & { description: string; examples?: unknown[] } {
  return { ...part, description, ...(examples === undefined ? {} : { examples: [...examples] }) };
}

/** Reusable property schemas shared by several agents. */
export const schemaParts = {
  name: {
    type: 'string',
    minLength: 1,
    maxLength: 255,
    pattern: pathPatterns.name,
    spinPath: 'name',
  },
  relativePath: {
    type: 'string',
    minLength: 1,
    maxLength: 1024,
    pattern: pathPatterns.relative,
    spinPath: 'relative',
  },
  duration: {
    type: ['string', 'integer'],
    pattern: '^[0-9]{1,9}(ms|s|m|h)$',
    minimum: 0,
    maximum: 86_400,
  },
  vmId: {
    type: ['integer', 'string'],
    minimum: 0,
    maximum: 999_999,
    pattern: '^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$',
  },
  force: { type: 'boolean' },
} as const satisfies Record<string, JsonSchema>;
