import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { ActionSpec } from '../agents/action-spec.js';
import { pathProblem, type PathKind } from '../agents/safe-path.js';
import { packageSchema } from './package-schema.js';

/**
 * Compiled validators: the package schema once, each action's params schema on first use, so a
 * package that uses three actions compiles three schemas, not all of them.
 */
export class Validators {
  readonly #ajv = createAjv();
  readonly #actions = new Map<ActionSpec, ValidateFunction>();
  #package: ValidateFunction | undefined;

  /** Validates the structure of a whole package document; errors as ajv reports them. */
  validatePackage(doc: unknown): ErrorObject[] {
    const validate = (this.#package ??= this.#ajv.compile(packageSchema));
    return validate(doc) ? [] : [...(validate.errors ?? [])];
  }

  /** Validates one command's params against its action's schema. */
  validateParams(spec: ActionSpec, params: unknown): ErrorObject[] {
    let validate = this.#actions.get(spec);
    if (validate === undefined) {
      validate = this.#ajv.compile(spec.params);
      this.#actions.set(spec, validate);
    }
    return validate(params) ? [] : [...(validate.errors ?? [])];
  }
}

function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true });
  const validatePath = (kind: PathKind, data: string): boolean => {
    const problem = pathProblem(data, kind);
    if (problem === undefined) return true;
    validatePathErrors.errors = [{ keyword: 'spinPath', message: problem, params: { kind } }];
    return false;
  };
  const validatePathErrors = Object.assign(validatePath, { errors: [] as Partial<ErrorObject>[] });
  ajv.addKeyword({
    keyword: 'spinPath',
    type: 'string',
    schemaType: 'string',
    errors: true,
    validate: validatePathErrors,
  });
  return ajv;
}
