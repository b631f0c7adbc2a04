import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagnosticsReport } from '../../src/cli/load-or-report.js';
import { defaultLoadLimits, type LoadLimits } from '../../src/load/load-package-file.js';
import { loadPackages } from '../../src/load/load-packages.js';
import { repoRoot, spin } from '../support/spin-cli.js';

/**
 * The corpus of invalid packages in test/fixtures/invalid: each `NN-what.spin.yaml` has its
 * `NN-what.expected`, the exact stderr of `spin validate test/fixtures/invalid/NN-what.spin.yaml`
 * run from the repo root, and optionally `NN-what.args`, extra CLI arguments one per line.
 * Every golden was read line by line before it was written: it is what a user should see.
 *
 * Every fixture is loaded in process (`loadPackages`, rendered by `diagnosticsReport` as
 * `spin validate` prints it); a few also go through the built binary, for the exit code, the
 * flag parsing and the rendering on stderr.
 *
 * Regenerate after a deliberate change of wording or position (then read the diff!):
 *   UPDATE_GOLDEN=1 npx vitest run test/load/invalid-corpus.test.ts
 */
const fixturesDir = 'test/fixtures/invalid';
const update = process.env['UPDATE_GOLDEN'] === '1';

interface Fixture {
  name: string;
  /** The path as given on the command line, relative to the repo root. */
  file: string;
  args: string[];
  expectedPath: string;
}

const fixtures: Fixture[] = readdirSync(join(repoRoot, fixturesDir))
  .filter((f) => f.endsWith('.spin.yaml'))
  .sort()
  .map((f) => {
    const name = f.slice(0, -'.spin.yaml'.length);
    const argsPath = join(repoRoot, fixturesDir, `${name}.args`);
    const args = existsSync(argsPath)
      ? readFileSync(argsPath, 'utf8')
          .split('\n')
          .filter((line) => line !== '')
      : [];
    return {
      name,
      file: `${fixturesDir}/${f}`,
      args,
      expectedPath: join(repoRoot, fixturesDir, `${name}.expected`),
    };
  });

/** The fixtures also run through the binary: a syntax error, a flag, several problems. */
const throughBinary = ['01-yaml-unclosed-flow', '12-file-too-large', '69-many-problems'];

/** The load limits an `.args` file sets; `spin validate` takes no other flag the corpus uses. */
function limitsOf(fixture: Fixture): LoadLimits {
  const limits = { ...defaultLoadLimits };
  for (let i = 0; i < fixture.args.length; i += 2) {
    const [flag, value] = [fixture.args[i], fixture.args[i + 1]];
    if (flag !== '--max-bytes' || value === undefined || !/^[0-9]+$/.test(value))
      throw new Error(`${fixture.name}.args: only --max-bytes <n> is understood here`);
    limits.maxBytes = Number(value);
  }
  return limits;
}

/** What `spin validate <file> <args>` prints on stderr for an invalid file, in process. */
async function renderInProcess(fixture: Fixture): Promise<{ stderr: string; lines: number[] }> {
  const result = await loadPackages([fixture.file], limitsOf(fixture));
  // oclif's logToStderr ends the report with a newline.
  const stderr =
    result.diagnostics.length === 0
      ? ''
      : `${diagnosticsReport(result.diagnostics, result.files.length)}\n`;
  return { stderr, lines: result.diagnostics.map((d) => d.line) };
}

/** `file:line:col` of each diagnostic line of a rendered report (the count line has none). */
function reportedLines(stderr: string, file: string): number[] {
  const lines: number[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith(`${file}:`)) continue;
    const match = /^(\d+):(\d+) /.exec(line.slice(file.length + 1));
    if (match !== null) lines.push(Number(match[1]));
  }
  return lines;
}

// The goldens name each file as given, relative to the repo root.
const cwd = process.cwd();
beforeAll(() => {
  process.chdir(repoRoot);
});
afterAll(() => {
  process.chdir(cwd);
});

describe('the invalid corpus', () => {
  it('has at least 40 packages, each with a golden file', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(40);
    if (!update)
      expect(fixtures.filter((f) => !existsSync(f.expectedPath)).map((f) => f.name)).toEqual([]);
    expect(throughBinary.filter((n) => !fixtures.some((f) => f.name === n))).toEqual([]);
  });

  describe.each(fixtures)('$name', (fixture) => {
    it('loads with exactly the golden diagnostics, in the same lines', async () => {
      const { stderr, lines } = await renderInProcess(fixture);
      if (update) writeFileSync(fixture.expectedPath, stderr);
      const golden = readFileSync(fixture.expectedPath, 'utf8');
      expect(stderr).toBe(golden);
      expect(lines).toEqual(reportedLines(golden, fixture.file));
    });
  });
});

describe('the invalid corpus through spin validate', () => {
  const chosen = fixtures.filter((f) => throughBinary.includes(f.name));
  beforeAll(() => {
    if (!existsSync(join(repoRoot, 'dist/commands/validate.js')))
      throw new Error('spin is not built: run `npm run build` first');
  });

  it.each(chosen)('$name exits 2 with exactly the golden diagnostics on stderr', async (f) => {
    const run = await spin(['validate', f.file, ...f.args]);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(readFileSync(f.expectedPath, 'utf8'));
    expect(run.code).toBe(2);
  });

  it('reports the same lines as JSON, with valid: false, file by file', async () => {
    const plain = chosen.filter((f) => f.args.length === 0);
    const run = await spin(['validate', '--json', ...plain.map((f) => f.file)]);
    expect(run.code).toBe(2);
    const report = JSON.parse(run.stdout) as {
      valid: boolean;
      diagnostics: { file: string; line: number }[];
    };
    expect(report.valid).toBe(false);
    for (const f of plain) {
      const golden = readFileSync(f.expectedPath, 'utf8');
      expect(report.diagnostics.filter((d) => d.file === f.file).map((d) => d.line)).toEqual(
        reportedLines(golden, f.file),
      );
    }
  });
});
