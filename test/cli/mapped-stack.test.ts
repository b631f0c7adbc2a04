import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { mappedStack } from '../../src/cli/mapped-stack.js';
import { repoRoot, testDir } from '../support/spin-cli.js';

describe('mappedStack', () => {
  it('points the frames of a bundle run as a vm.Script at the sources it was built from', async () => {
    const dir = await testDir();
    await writeFile(
      join(dir, 'thrower.ts'),
      "export function fail(): never {\n  throw new Error('boom');\n}\n",
    );
    await writeFile(
      join(dir, 'entry.ts'),
      "import { fail } from './thrower.js';\n\nexport function run(): void {\n  fail();\n}\n",
    );
    const bundle = join(dir, 'out.cjs');
    await build({
      entryPoints: [join(dir, 'entry.ts')],
      outfile: bundle,
      bundle: true,
      format: 'cjs',
      platform: 'node',
      sourcemap: true,
      logLevel: 'silent',
    });
    // As bin/bundle.cjs runs spin's bundle: a wrapper that keeps the bundle's line numbers.
    const source = readFileSync(bundle, 'utf8');
    const wrapped = new Script(`(function (exports, module) {${source}\n})`, { filename: bundle });
    const module = { exports: {} as { run?: () => void } };
    (wrapped.runInThisContext() as (e: object, m: object) => void)(module.exports, module);
    let stack = '';
    try {
      module.exports.run?.();
    } catch (error) {
      stack = (error as Error).stack ?? '';
    }
    expect(stack).toContain(`(${bundle}:`);

    const mapped = mappedStack(stack);
    expect(mapped).toContain(`at fail (${join(dir, 'thrower.ts')}:2:9)`);
    expect(mapped).toContain(`run (${join(dir, 'entry.ts')}:4:3)`);
    expect(mapped).not.toContain(bundle);
  });

  it("maps a line of spin's built bundle to the source file it came from", () => {
    const bundle = join(repoRoot, 'dist/bundle/spin.cjs');
    const lines = readFileSync(bundle, 'latin1').split('\n');
    const line = lines.findIndex((l) => l.startsWith('function mappedStack('));
    expect(line).toBeGreaterThan(0);

    const source = join(repoRoot, 'src/cli/mapped-stack.ts');
    const sourceLine = readFileSync(source, 'utf8')
      .split('\n')
      .findIndex((l) => l.startsWith('export function mappedStack('));

    const mapped = mappedStack(`Error: x\n    at mappedStack (${bundle}:${String(line + 1)}:1)`);
    expect(mapped).toBe(`Error: x\n    at mappedStack (${source}:${String(sourceLine + 1)}:8)`);
  });

  it('leaves frames of files without a source map as they are', () => {
    const stack = `Error: x\n    at f (${join(repoRoot, 'bin/run.cjs')}:3:7)\n    at node:internal/main:1:1`;
    expect(mappedStack(stack)).toBe(stack);
  });
});
