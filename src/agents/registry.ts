import { internalError } from '../core/errors.js';
import type { ActionSpec } from './action-spec.js';
import { emulationSpecs } from './emulation/specs.js';
import { shellSpecs } from './shell/specs.js';
import { storageSpecs } from './storage/specs.js';

/**
 * Every action spin knows, keyed by resource and then action. This is the specs only (schemas
 * and inverses); implementations are attached by the executor, so that loading and validating
 * a package never imports qemu or process code.
 */
export const actionRegistry: ReadonlyMap<string, ReadonlyMap<string, ActionSpec>> = new Map(
  Object.entries({ storage: storageSpecs, emulation: emulationSpecs, shell: shellSpecs }).map(
    ([resource, specs]) => [resource, new Map(specs.map((spec) => [spec.action, spec]))],
  ),
);

/** The spec of `resource`/`action`, or undefined when spin has no such action. */
export function findAction(resource: string, action: string): ActionSpec | undefined {
  return actionRegistry.get(resource)?.get(action);
}

/** The spec of an action spin ships, for its implementation; a missing one is a bug in spin. */
export function builtinSpec(resource: string, action: string): ActionSpec {
  const spec = findAction(resource, action);
  if (spec === undefined)
    throw internalError(`no spec for the built-in action ${resource}/${action}`);
  return spec;
}
