import { createRequire } from 'node:module';
import type { ErrorObject, Options, ValidateFunction } from 'ajv';
import type { Ajv2020 } from 'ajv/dist/2020.js';

/** A JSON Schema (draft 2020-12) document or fragment. */
export type JsonSchema = Record<string, unknown>;

/**
 * The two ajv configurations of spin. Both report all errors at once with the failing schema and
 * data kept for messages, and are strict about schemas.
 * - `package`: package files and action params. Nothing is changed; an unknown field is an error
 *   the user should see (and `spinPath` marks the params that name paths).
 * - `wire`: what arrives over the daemon's socket. Defaults are filled in, and unknown fields
 *   are dropped, so an older daemon accepts a newer client's extra fields.
 */
export type AjvFlavour = 'package' | 'wire';

/**
 * The ajv instance of a flavour, shared by the build's ahead-of-time compile (`source`) and the
 * fallback compile when running from source.
 */
export function createAjv(flavour: AjvFlavour, options: { source?: boolean } = {}): Ajv2020 {
  // Loaded only when needed: the compiled validators make ajv's compiler unnecessary.
  const require = createRequire(import.meta.url);
  const { Ajv2020: Ajv } = require('ajv/dist/2020.js') as { Ajv2020: typeof Ajv2020 };
  const wire: Options = { useDefaults: true, removeAdditional: true };
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    verbose: true,
    allowUnionTypes: true,
    ...(flavour === 'wire' ? wire : {}),
    ...(options.source === true ? { code: { source: true } } : {}),
  });
  ajv.addVocabulary(['spinPath']);
  return ajv;
}

type Compiled = Record<string, ValidateFunction | undefined>;

/**
 * A set of validators, keyed by name. The build compiles them ahead of time into a CommonJS file
 * of ajv's standalone code (scripts/build-validators.js), because compiling at start-up costs
 * ~100 ms; where that file is absent (running from source) each is compiled on first use with the
 * same configuration.
 */
export class SchemaValidators {
  readonly #compiled: Compiled;
  readonly #flavour: AjvFlavour;
  #ajv: Ajv2020 | undefined;

  private constructor(compiled: Compiled, flavour: AjvFlavour) {
    this.#compiled = compiled;
    this.#flavour = flavour;
  }

  /** The validators compiled into `file` (a URL next to the caller), or none yet. */
  static load(file: URL, flavour: AjvFlavour): SchemaValidators {
    try {
      return new SchemaValidators(createRequire(file)(file.pathname) as Compiled, flavour);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
      return new SchemaValidators({}, flavour);
    }
  }

  /** Validates `data` (which a `wire` validator may change: defaults, dropped fields). */
  check(key: string, schema: JsonSchema, data: unknown): ErrorObject[] {
    let validate = this.#compiled[key];
    if (validate === undefined) {
      validate = (this.#ajv ??= createAjv(this.#flavour)).compile(schema);
      this.#compiled[key] = validate;
    }
    return validate(data) ? [] : [...(validate.errors ?? [])];
  }
}
