import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { actionRegistry } from '../../src/agents/registry.js';
import { loadPackages } from '../../src/load/load-packages.js';
import { editorSchema, packageSchema } from '../../src/load/package-schema.js';
import { repoRoot } from '../support/spin-cli.js';

type Schema = Record<string, unknown>;
const editor = editorSchema();
const commandOf = (schema: Schema): Schema =>
  (schema['$defs'] as Record<string, Schema>)['command'] as Schema;

/** Every property schema below `schema`, with its path. */
function* properties(schema: unknown, path: string): Generator<[string, Schema]> {
  if (schema === null || typeof schema !== 'object') return;
  const s = schema as Schema;
  for (const [key, sub] of Object.entries((s['properties'] ?? {}) as Record<string, Schema>)) {
    yield [`${path}.${key}`, sub];
    yield* properties(sub, `${path}.${key}`);
  }
  if (s['items'] !== undefined) yield* properties(s['items'], `${path}[]`);
}

describe('the editor schema says what the loader checks', () => {
  it('has the loader’s command fields, resources as an enum, and per resource its actions', () => {
    const loaderFields = Object.keys(commandOf(packageSchema)['properties'] as Schema);
    const command = commandOf(editor);
    expect(Object.keys(command['properties'] as Schema).sort()).toEqual(loaderFields.sort());
    expect((command['properties'] as Record<string, Schema>)['resource']?.['enum']).toEqual([
      ...actionRegistry.keys(),
    ]);
    const branches = command['allOf'] as { if: Schema; then: Schema }[];
    for (const [resource, actions] of actionRegistry) {
      const branch = branches.find(
        (b) =>
          JSON.stringify(b.if) ===
          JSON.stringify({ properties: { resource: { const: resource } }, required: ['resource'] }),
      );
      const action =
        (branch?.then['properties'] as Record<string, Schema> | undefined)?.['action'] ?? {};
      expect(action['enum'], resource).toEqual([...actions.keys()]);
    }
  });

  it('gives every action the params schema the loader validates with, bound for bound', () => {
    const branches = commandOf(editor)['allOf'] as { if: Schema; then: Schema }[];
    for (const [resource, actions] of actionRegistry) {
      for (const [action, spec] of actions) {
        const branch = branches.find((b) => {
          const p = b.if['properties'] as Record<string, { const?: string }>;
          return p['resource']?.const === resource && p['action']?.const === action;
        });
        const params = (branch?.then['properties'] as Record<string, Schema> | undefined)?.[
          'params'
        ];
        const strip = (v: unknown): unknown =>
          JSON.parse(JSON.stringify(v, (k, x: unknown) => (k === 'spinPath' ? undefined : x)));
        const { description, ...rest } = params ?? {};
        expect(rest, `${resource}.${action}`).toEqual(strip(spec.params));
        expect(description).toBe(spec.description);
      }
    }
  });

  it('describes every param of every action, as an editor shows on hover', () => {
    const missing: string[] = [];
    for (const [resource, actions] of actionRegistry) {
      for (const [action, spec] of actions) {
        for (const [path, schema] of properties(spec.params, `${resource}.${action}`)) {
          if (typeof schema['description'] !== 'string') missing.push(path);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('accepts the examples and refuses every invalid package the schema can tell, as the loader does', async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(editor);
    for (const file of ['vm.spin.yaml', 'storage.spin.yaml', 'two-vms.spin.yaml']) {
      const text = await readFile(join(repoRoot, 'examples', file), 'utf8');
      expect(validate(load(text)), `${file}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    // What only the loader can tell (YAML errors, duplicate keys, cycles, unknown needs, file
    // size) is left out: those files do not reach a schema.
    const schemaReasons = new Set([
      'schema',
      'unknown-resource',
      'unknown-action',
      'params',
      'unsafe-path',
    ]);
    const dir = join(repoRoot, 'test/fixtures/invalid');
    let compared = 0;
    for (const name of (await readdir(dir)).filter((f) => f.endsWith('.spin.yaml')).sort()) {
      const path = join(dir, name);
      const result = await loadPackages([path]);
      const reasons = new Set(result.diagnostics.map((d) => d.reason));
      if (reasons.size === 0 || ![...reasons].every((r) => schemaReasons.has(r))) continue;
      let doc: unknown;
      try {
        doc = load(await readFile(path, 'utf8'));
      } catch {
        continue;
      }
      expect(validate(doc), `${name} is refused by the loader (${[...reasons].join(', ')})`).toBe(
        false,
      );
      compared++;
    }
    expect(compared).toBeGreaterThan(10);
  });
});
