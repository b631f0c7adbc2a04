import type { ErrorObject } from 'ajv';
import type { ActionSpec } from '../agents/action-spec.js';
import { SchemaValidators } from '../core/json-schema.js';
import { packageSchema } from './package-schema.js';

/** The key of an action's params validator: `storage/create_image`. */
export function validatorKey(spec: Pick<ActionSpec, 'resource' | 'action'>): string {
  return `${spec.resource}/${spec.action}`;
}

/** The key of the package validator. */
export const packageValidatorKey = 'package';

/** Where the build writes the package and params validators (see SchemaValidators). */
export const compiledValidatorsFile = new URL('./compiled-validators.cjs', import.meta.url);

/** The validators of the package schema and of every action's params. */
export class Validators {
  readonly #validators: SchemaValidators;

  private constructor(validators: SchemaValidators) {
    this.#validators = validators;
  }

  static load(): Validators {
    return new Validators(SchemaValidators.load(compiledValidatorsFile, 'package'));
  }

  /** Validates the structure of a whole package document; errors as ajv reports them. */
  validatePackage(doc: unknown): ErrorObject[] {
    return this.#validators.check(packageValidatorKey, packageSchema, doc);
  }

  /** Validates one command's params against its action's schema. */
  validateParams(spec: ActionSpec, params: unknown): ErrorObject[] {
    return this.#validators.check(validatorKey(spec), spec.params, params);
  }
}
