import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pathPatterns, pathProblem, type PathKind } from '../../src/agents/safe-path.js';
import type { Diagnostic } from '../../src/core/diagnostic.js';
import { loadPackageText } from '../../src/load/load-package-file.js';
import { topologicalOrder } from '../../src/load/topological-order.js';
import { Validators } from '../../src/load/validators.js';
import { repoRoot } from '../support/spin-cli.js';

const validators = Validators.load();
/** Multiplies every numRuns: `SPIN_PROPERTY_SCALE=50 npx vitest run test/load/properties.test.ts` hunts longer. */
const scale = Number(process.env['SPIN_PROPERTY_SCALE'] ?? '1');
const runs = (n: number): number => Math.max(1, Math.round(n * scale));

// ---------------------------------------------------------------------------------------------
// Random valid packages: a DAG of storage commands.

/** Command ids, including ones JavaScript treats specially (integer-like, Object.prototype's). */
const commandId = fc.oneof(
  { weight: 8, arbitrary: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,8}$/) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 99_999 }).map(String) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty'),
  },
);
const name = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,10}$/);
const size = fc.integer({ min: 1, max: 4096 });

type Params = Record<string, string | number | boolean>;
const storageCommand: fc.Arbitrary<{ action: string; params: Params }> = fc.oneof(
  fc.record({ action: fc.constant('add_volume'), params: fc.record({ path: name }) }),
  fc.record({
    action: fc.constant('remove_volume'),
    params: fc.record({ path: name, force: fc.boolean() }, { requiredKeys: ['path'] }),
  }),
  fc.record({
    action: fc.constant('create_image'),
    params: fc.record(
      { volume: name, image: name, image_size: size, format: fc.constantFrom('raw', 'qcow2') },
      { requiredKeys: ['volume', 'image', 'image_size'] },
    ),
  }),
  fc.record({
    action: fc.constant('delete_image'),
    params: fc.record({ volume: name, image: name }),
  }),
  fc.record({
    action: fc.constant('copy_image'),
    params: fc.record({ from_volume: name, from_image: name, to_volume: name, to_image: name }),
  }),
  fc.record({
    action: fc.constant('resize_image'),
    params: fc.record(
      { volume: name, image: name, image_size: size, force: fc.boolean() },
      { requiredKeys: ['volume', 'image', 'image_size'] },
    ),
  }),
);
const options = fc.record(
  {
    timeout: fc.constantFrom('30s', '5m', '1h', '250ms', 90),
    retries: fc.integer({ min: 0, max: 100 }),
    node: fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/),
    description: fc.string({ maxLength: 40 }),
  },
  { requiredKeys: [] },
);

const packageName = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/);
const packageDefaults = fc.option(
  options.map(({ timeout, retries, node }) => ({ timeout, retries, node })),
  { nil: undefined },
);

interface GeneratedPackage {
  text: string;
  /** Command ids in file order. */
  fileOrder: string[];
  needs: Map<string, string[]>;
}

/**
 * A valid package whose needs form a DAG: a random order of the commands is drawn first and each
 * command needs a random subset of those before it in that order; the file lists the commands in
 * another random order, each in block or flow style.
 */
function dag(withNeeds: boolean): fc.Arbitrary<GeneratedPackage> {
  return fc.uniqueArray(commandId, { minLength: 1, maxLength: 12 }).chain((ids) => {
    const n = ids.length;
    const perCommand = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T[]> =>
      fc.array(arb, { minLength: n, maxLength: n });
    return fc
      .record({
        order: fc.shuffledSubarray(ids, { minLength: n, maxLength: n }),
        fileOrder: fc.shuffledSubarray(ids, { minLength: n, maxLength: n }),
        picks: perCommand(fc.array(fc.nat(), { maxLength: withNeeds ? 4 : 0 })),
        bodies: perCommand(storageCommand),
        extras: perCommand(options),
        styles: perCommand(fc.constantFrom('block', 'flow')),
        name: packageName,
        defaults: packageDefaults,
      })
      .map(({ order, fileOrder, picks, bodies, extras, styles, name, defaults }) => {
        const needs = new Map<string, string[]>();
        order.forEach((id, k) => {
          const chosen = (picks[k] ?? []).map((p) => order[p % Math.max(k, 1)]!);
          needs.set(id, k === 0 ? [] : [...new Set(chosen)]);
        });
        const lines = [`package: ${JSON.stringify(name)}`];
        if (defaults !== undefined) {
          const clean = Object.fromEntries(
            Object.entries(defaults).filter(([, v]) => v !== undefined),
          );
          lines.push(`defaults: ${JSON.stringify(clean)}`);
        }
        lines.push('commands:');
        fileOrder.forEach((id, i) => {
          const command = {
            resource: 'storage',
            ...bodies[i]!,
            ...extras[i]!,
            ...(needs.get(id)!.length > 0 ? { needs: needs.get(id)! } : {}),
          };
          if (styles[i] === 'flow') {
            lines.push(`  ${JSON.stringify(id)}: ${JSON.stringify(command)}`);
            return;
          }
          lines.push(`  ${JSON.stringify(id)}:`);
          for (const [key, value] of Object.entries(command)) {
            if (key !== 'params') lines.push(`    ${key}: ${JSON.stringify(value)}`);
          }
          lines.push('    params:');
          for (const [key, value] of Object.entries(command.params))
            lines.push(`      ${key}: ${JSON.stringify(value)}`);
        });
        return { text: `${lines.join('\n')}\n`, fileOrder, needs };
      });
  });
}

/** The order the spec asks for: each time, the earliest command in the file that is ready. */
function referenceOrder(fileOrder: readonly string[], needs: Map<string, string[]>): string[] {
  const placed = new Set<string>();
  const order: string[] = [];
  while (order.length < fileOrder.length) {
    const next = fileOrder.find(
      (id) => !placed.has(id) && (needs.get(id) ?? []).every((need) => placed.has(need)),
    );
    if (next === undefined) throw new Error('not a DAG');
    placed.add(next);
    order.push(next);
  }
  return order;
}

describe('random valid DAGs', () => {
  it('are accepted, with their commands in file order', () => {
    fc.assert(
      fc.property(dag(true), (generated) => {
        const result = loadPackageText('gen.spin.yaml', generated.text, validators);
        expect(result.diagnostics).toEqual([]);
        expect(result.package?.commands.map((c) => c.id)).toEqual(generated.fileOrder);
        for (const command of result.package?.commands ?? [])
          expect(command.needs).toEqual(generated.needs.get(command.id));
      }),
      { numRuns: runs(150) },
    );
  });

  it('are ordered with every command after its needs, in file order where the needs allow, deterministically', () => {
    fc.assert(
      fc.property(dag(true), (generated) => {
        const commands = loadPackageText('gen.spin.yaml', generated.text, validators).package!
          .commands;
        const order = topologicalOrder(commands).map((c) => c.id);
        expect(order).toHaveLength(commands.length);
        const position = new Map(order.map((id, i) => [id, i]));
        for (const command of commands)
          for (const need of command.needs)
            expect(position.get(need)!).toBeLessThan(position.get(command.id)!);
        expect(order).toEqual(referenceOrder(generated.fileOrder, generated.needs));
        // Same input, same order: again from the same commands, and from a fresh load.
        expect(topologicalOrder(commands).map((c) => c.id)).toEqual(order);
        const again = loadPackageText('gen.spin.yaml', generated.text, validators).package!;
        expect(topologicalOrder(again.commands).map((c) => c.id)).toEqual(order);
      }),
      { numRuns: runs(150) },
    );
  });

  it('without needs are ordered exactly as in the file', () => {
    fc.assert(
      fc.property(dag(false), (generated) => {
        const commands = loadPackageText('gen.spin.yaml', generated.text, validators).package!
          .commands;
        expect(topologicalOrder(commands).map((c) => c.id)).toEqual(generated.fileOrder);
      }),
      { numRuns: runs(100) },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Random mutations of valid files.

const examples = ['vm', 'two-vms', 'storage'].map((e) =>
  readFileSync(`${repoRoot}examples/${e}.spin.yaml`, 'utf8'),
);

/** Bits of text that mean something to YAML, or to the loader. */
const insertions = [
  ':',
  ': ',
  '{',
  '}',
  '[',
  ']',
  ',',
  '- ',
  '&a ',
  '*a',
  '!',
  '!!str ',
  '|',
  '>',
  "'",
  '"',
  '# ',
  '\n',
  '\r',
  '\r\n',
  '\t',
  ' ',
  '  ',
  'x',
  '0',
  '\\',
  '? ',
  '%',
  '@',
  '`',
  '\0',
  '\uFEFF',
  '\u2028',
  '..',
  '/',
  '__proto__: {}\n',
  '<<: *a\n',
  '---\n',
  '...\n',
];

type Mutation =
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'deleteLine' | 'duplicateLine'; line: number }
  | { kind: 'swapLines'; a: number; b: number }
  | { kind: 'truncate'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant('delete' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.constantFrom(...insertions),
  }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({
    kind: fc.constantFrom('deleteLine' as const, 'duplicateLine' as const),
    line: fc.nat(),
  }),
  fc.record({ kind: fc.constant('swapLines' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(text: string, m: Mutation): string {
  const at = 'at' in m ? m.at % (text.length + 1) : 0;
  const lines = text.split('\n');
  switch (m.kind) {
    case 'delete':
      return text.slice(0, at) + text.slice(at + m.length);
    case 'insert':
      return text.slice(0, at) + m.text + text.slice(at);
    case 'duplicate':
      return text.slice(0, at + m.length) + text.slice(at);
    case 'deleteLine':
      lines.splice(m.line % lines.length, 1);
      return lines.join('\n');
    case 'duplicateLine': {
      const i = m.line % lines.length;
      lines.splice(i, 0, lines[i]!);
      return lines.join('\n');
    }
    case 'swapLines': {
      const a = m.a % lines.length;
      const b = m.b % lines.length;
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      return lines.join('\n');
    }
    case 'truncate':
      return text.slice(0, at);
  }
}

const mutatedFile = fc
  .tuple(
    fc.oneof(
      fc.constantFrom(...examples),
      dag(true).map((g) => g.text),
    ),
    fc.array(mutation, { minLength: 1, maxLength: 6 }),
  )
  .map(([text, mutations]) => mutations.reduce(mutate, text));

/** What is wrong with a result, as a list of complaints (empty when it is well formed). */
function malformed(
  text: string,
  diagnostics: readonly Diagnostic[],
  hasPackage: boolean,
): string[] {
  const lines = text.split('\n');
  const problems: string[] = [];
  if (hasPackage === diagnostics.length > 0)
    problems.push('must have either a package or diagnostics, not both or neither');
  for (const d of diagnostics) {
    const where = `${String(d.line)}:${String(d.column)} ${d.message}`;
    if (!Number.isInteger(d.line) || d.line < 1 || d.line > lines.length + 1)
      problems.push(`line outside 1..${String(lines.length + 1)}: ${where}`);
    if (!Number.isInteger(d.column) || d.column < 1) problems.push(`column < 1: ${where}`);
    // A diagnostic points at a character of its line, or just past its end.
    else if (d.column > (lines[d.line - 1] ?? '').length + 1)
      problems.push(`column past the end of its line: ${where}`);
    if (d.message === '') problems.push(`empty message: ${where}`);
  }
  return problems;
}

describe('random mutations of valid files', () => {
  // How fast a file loads is measured in bench/, not asserted here.
  it('never throw, and give a package or well-placed diagnostics', () => {
    fc.assert(
      fc.property(mutatedFile, (text) => {
        const result = loadPackageText('mutated.spin.yaml', text, validators);
        expect(malformed(text, result.diagnostics, result.package !== undefined)).toEqual([]);
      }),
      { numRuns: runs(1000) },
    );
  });

  it('leave Object.prototype alone, whatever __proto__ keys they add', () => {
    const text = readFileSync(`${repoRoot}test/fixtures/invalid/17-proto-key.spin.yaml`, 'utf8');
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    const result = loadPackageText('proto.spin.yaml', text, validators);
    expect(result.diagnostics.map((d) => d.path).sort()).toEqual([
      '__proto__',
      'commands.volume.__proto__',
      'commands.volume.params.__proto__',
    ]);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(({} as Record<string, unknown>)['resource']).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// The JSON Schema patterns of safe paths say what pathProblem says.

describe('pathPatterns', () => {
  const pathString = fc
    .array(fc.constantFrom('a', '.', '/', '\\', '\0', '\n', 'b'), { maxLength: 12 })
    .map((chars) => chars.join(''));

  it.each(['name', 'relative'] as PathKind[])('agree with pathProblem for %s paths', (kind) => {
    const pattern = new RegExp(pathPatterns[kind], 'u');
    fc.assert(
      fc.property(pathString, (value) => {
        expect(pattern.test(value)).toBe(pathProblem(value, kind) === undefined);
      }),
      { numRuns: runs(2000) },
    );
  });

  it.each(['name', 'relative'] as PathKind[])(
    'agree with pathProblem on the usual attacks (%s)',
    (kind) => {
      const pattern = new RegExp(pathPatterns[kind], 'u');
      for (const value of [
        '',
        '.',
        '..',
        '../x',
        '/abs',
        'a/b',
        'a/../b',
        'a\0b',
        'a\\b',
        'a//b',
        'a/',
        '.a',
        'a..',
        'x\u007f',
      ])
        expect({ value, ok: pattern.test(value) }).toEqual({
          value,
          ok: pathProblem(value, kind) === undefined,
        });
    },
  );
});
