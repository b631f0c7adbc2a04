import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, spin, type CliRun } from '../support/spin-cli.js';

/**
 * The corpus of invalid packages in test/fixtures/invalid: each `NN-what.spin.yaml` has its
 * `NN-what.expected`, the exact stderr of `spin validate test/fixtures/invalid/NN-what.spin.yaml`
 * run from the repo root, and optionally `NN-what.args`, extra CLI arguments one per line.
 * Every golden was read line by line before it was written: it is what a user should see.
 *
 * Regenerate after a deliberate change of wording or position (then read the diff!):
 *   UPDATE_GOLDEN=1 npx vitest run test/load/invalid-corpus.test.ts
 */
const fixturesDir = 'test/fixtures/invalid';
const update = process.env['UPDATE_GOLDEN'] === '1';
const concurrency = 4;

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

/** Runs `work` over `items`, at most `limit` at a time, keeping the results in order. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await work(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
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

interface JsonReport {
  valid: boolean;
  packages: unknown[];
  diagnostics: { file: string; line: number; column: number; path: string; message: string }[];
}

const runs = new Map<string, CliRun>();
const jsonRuns = new Map<string, JsonReport>();

beforeAll(async () => {
  if (!existsSync(join(repoRoot, 'dist/commands/validate.js')))
    throw new Error('spin is not built: run `npm run build` first');
  const text = await mapLimited(fixtures, concurrency, (f) =>
    spin(['validate', f.file, ...f.args]),
  );
  fixtures.forEach((f, i) => runs.set(f.name, text[i]!));

  // --json: the fixtures without extra arguments in one run (the command takes many files),
  // the others one by one. Each run's diagnostics are then split by file.
  const plain = fixtures.filter((f) => f.args.length === 0);
  const special = fixtures.filter((f) => f.args.length > 0);
  const batches = [
    { files: plain.map((f) => f.file), args: [] as string[] },
    ...special.map((f) => ({ files: [f.file], args: f.args })),
  ];
  const json = await mapLimited(batches, concurrency, (b) =>
    spin(['validate', '--json', ...b.files, ...b.args]),
  );
  batches.forEach((batch, i) => {
    const run = json[i]!;
    const report = JSON.parse(run.stdout) as JsonReport;
    for (const file of batch.files) {
      const name = fixtures.find((f) => f.file === file)!.name;
      jsonRuns.set(name, {
        ...report,
        diagnostics: report.diagnostics.filter((d) => d.file === file),
      });
    }
  });
}, 120_000);

describe('the invalid corpus', () => {
  it('has at least 40 packages, each with a golden file', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(40);
    if (!update)
      expect(fixtures.filter((f) => !existsSync(f.expectedPath)).map((f) => f.name)).toEqual([]);
  });

  describe.each(fixtures)('$name', (fixture) => {
    it('exits 2 with exactly the golden diagnostics on stderr', () => {
      const run = runs.get(fixture.name)!;
      if (update) writeFileSync(fixture.expectedPath, run.stderr);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(readFileSync(fixture.expectedPath, 'utf8'));
    });

    it('reports the same lines as JSON, with valid: false', () => {
      const report = jsonRuns.get(fixture.name)!;
      expect(report.valid).toBe(false);
      const golden = readFileSync(fixture.expectedPath, 'utf8');
      expect(report.diagnostics.map((d) => d.line)).toEqual(reportedLines(golden, fixture.file));
    });
  });
});
