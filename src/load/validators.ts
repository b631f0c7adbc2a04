import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import type { ActionSpec, JsonSchema } from '../agents/action-spec.js';
import { packageSchema } from './package-schema.js';

/** The key of an action's params validator: `storage/create_image`. */
export function validatorKey(spec: Pick<ActionSpec, 'resource' | 'action'>): string {
  return `${spec.resource}/${spec.action}`;
}

/** The key of the package validator. */
export const packageValidatorKey = 'package';

type Compiled = Record<string, ValidateFunction | undefined>;

/**
 * The validators of the package schema and of every action's params. The build compiles them
 * ahead of time into `compiled-validators.cjs` (ajv's standalone code), because compiling them
 * when a command starts costs ~100 ms, more than loading a thousand-command package. Where that
 * file is absent (running from source), they are compiled on first use with the same options.
 */
export class Validators {
  readonly #compiled: Compiled;
  #ajv: ReturnType<typeof createAjv> | undefined;

  private constructor(compiled: Compiled) {
    this.#compiled = compiled;
  }

  static load(): Validators {
    try {
      return new Validators(
        createRequire(import.meta.url)('./compiled-validators.cjs') as Compiled,
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
      return new Validators({});
    }
  }

  /** Validates the structure of a whole package document; errors as ajv reports them. */
  validatePackage(doc: unknown): ErrorObject[] {
    return this.#run(packageValidatorKey, packageSchema, doc);
  }

  /** Validates one command's params against its action's schema. */
  validateParams(spec: ActionSpec, params: unknown): ErrorObject[] {
    return this.#run(validatorKey(spec), spec.params, params);
  }

  #run(key: string, schema: JsonSchema, data: unknown): ErrorObject[] {
    let validate = this.#compiled[key];
    if (validate === undefined) {
      validate = (this.#ajv ??= createAjv()).compile(schema);
      this.#compiled[key] = validate;
    }
    return validate(data) ? [] : [...(validate.errors ?? [])];
  }
}

/**
 * The one ajv configuration of spin, shared by the build's ahead-of-time compile and the
 * fallback: all errors at once, the failing schema and data kept for messages, strict schemas.
 */
export function createAjv(options: { source?: boolean } = {}): Ajv2020 {
  // Loaded only when needed: the compiled validators make ajv's compiler unnecessary.
  const require = createRequire(import.meta.url);
  const { Ajv2020: Ajv } = require('ajv/dist/2020.js') as { Ajv2020: typeof Ajv2020 };
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    verbose: true,
    allowUnionTypes: true,
    ...(options.source === true ? { code: { source: true } } : {}),
  });
  ajv.addVocabulary(['spinPath']);
  return ajv;
}
