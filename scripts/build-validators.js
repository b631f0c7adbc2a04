// Compiles every JSON schema spin validates against ahead of time, as ajv standalone code, so no
// command pays for compiling them at start-up:
// - the package schema and every action's params schema → dist/load/compiled-validators.cjs;
// - the daemon's wire schemas → dist/daemon/compiled-wire-validators.cjs;
// - the state file's schema → dist/reconcile/compiled-state-validators.cjs.
// - the schemas of the JSON documents commands print → dist/core/compiled-output-validators.cjs.
// Also writes schemas/package.schema.json, the schema editors use, and schemas/output/*.schema.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { outputSchemas } from '../dist/core/output-schemas.js';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { actionRegistry } from '../dist/agents/registry.js';
import { createAjv } from '../dist/core/json-schema.js';
import { compiledWireValidatorsFile, wireSchemas } from '../dist/daemon/wire-validation.js';
import { editorSchema, packageSchema } from '../dist/load/package-schema.js';
import {
  compiledValidatorsFile,
  packageValidatorKey,
  validatorKey,
} from '../dist/load/validators.js';
import {
  compiledStateValidatorsFile,
  stateSchema,
  stateValidatorKey,
} from '../dist/reconcile/state-schema.js';

/** Writes the standalone code of `schemas` (key → schema) compiled in one ajv flavour. */
function compile(flavour, schemas, file) {
  const ajv = createAjv(flavour, { source: true });
  const exports = {};
  for (const [key, schema] of schemas) {
    ajv.addSchema(schema, key);
    exports[key] = key;
  }
  writeFileSync(file, standaloneCode.default(ajv, exports));
  return schemas.length;
}

const packageSchemas = [[packageValidatorKey, packageSchema]];
for (const actions of actionRegistry.values()) {
  for (const spec of actions.values()) packageSchemas.push([validatorKey(spec), spec.params]);
}
const count =
  compile('package', packageSchemas, compiledValidatorsFile) +
  compile('wire', Object.entries(wireSchemas), compiledWireValidatorsFile) +
  compile('package', [[stateValidatorKey, stateSchema]], compiledStateValidatorsFile) +
  compile(
    'package',
    Object.entries(outputSchemas).map(([kind, schema]) => [`output-${kind}`, schema]),
    new URL('../dist/core/compiled-output-validators.cjs', import.meta.url),
  );
writeFileSync(
  new URL('../schemas/package.schema.json', import.meta.url),
  JSON.stringify(editorSchema(), null, 2) + '\n',
);
mkdirSync(new URL('../schemas/output/', import.meta.url), { recursive: true });
for (const [kind, schema] of Object.entries(outputSchemas)) {
  writeFileSync(
    new URL(`../schemas/output/${kind}.schema.json`, import.meta.url),
    JSON.stringify(schema, null, 2) + '\n',
  );
}
console.log(`compiled ${count} validators`);
