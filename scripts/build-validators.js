// Compiles the package schema and every action's params schema ahead of time into
// dist/load/compiled-validators.cjs (ajv standalone code), so no command pays for compiling
// them at start-up. Also writes schemas/package.schema.json, the schema editors use.
import { writeFileSync } from 'node:fs';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { actionRegistry } from '../dist/agents/registry.js';
import { editorSchema, packageSchema } from '../dist/load/package-schema.js';
import { createAjv, packageValidatorKey, validatorKey } from '../dist/load/validators.js';

const ajv = createAjv({ source: true });
const exports = {};
ajv.addSchema(packageSchema, packageValidatorKey);
exports[packageValidatorKey] = packageValidatorKey;
for (const actions of actionRegistry.values()) {
  for (const spec of actions.values()) {
    const key = validatorKey(spec);
    ajv.addSchema(spec.params, key);
    exports[key] = key;
  }
}
writeFileSync(
  new URL('../dist/load/compiled-validators.cjs', import.meta.url),
  standaloneCode.default(ajv, exports),
);
writeFileSync(
  new URL('../schemas/package.schema.json', import.meta.url),
  JSON.stringify(editorSchema(), null, 2) + '\n',
);
console.log(`compiled ${Object.keys(exports).length} validators`);
