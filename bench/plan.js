// npm run bench:plan — the planner (load + validate + graph) against js-yaml's bare parse of the
// same input, measured in the same run, each in a fresh process. Goals: planner within 2x of
// the bare parse at every size; 100k within 12x of 10k; an invalid 100k file within 3x.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePackages } from './generate-packages.js';

const worker = new URL('./plan-worker.js', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'spin-bench-plan-'));
const quick = process.argv.includes('--quick');

function measure(mode, files, runs) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    samples.push(
      JSON.parse(
        execFileSync(process.execPath, [worker, mode, ...files], { maxBuffer: 1 << 20 }).toString(),
      ),
    );
  }
  samples.sort((a, b) => a.ms - b.ms);
  return samples[Math.floor(samples.length / 2)];
}

const rows = [];
const sizes = quick ? [1000, 10000] : [1000, 10000, 100000];
const cases = [];
for (const count of sizes) {
  for (const shape of ['chain', 'fanout']) cases.push({ count, shape, files: 1 });
  cases.push({ count, shape: 'chain', files: 100 });
}
cases.push({ count: sizes[sizes.length - 1], shape: 'chain', files: 1, invalidEvery: 1000 });

const byKey = new Map();
for (const c of cases) {
  const dir = join(root, `${c.count}-${c.shape}-${c.files}-${c.invalidEvery ?? 0}`);
  const files = generatePackages(dir, c);
  const runs = c.count >= 100000 ? 1 : 5;
  const parse = measure('parse', files, runs);
  const planner = measure('planner', files, runs);
  const label = `${c.count} ${c.shape}${c.files > 1 ? ` in ${c.files} files` : ''}${c.invalidEvery ? ' (invalid)' : ''}`;
  byKey.set(`${c.count}-${c.shape}-${c.files}-${c.invalidEvery ?? 0}`, planner.ms);
  rows.push({
    case: label,
    'js-yaml parse ms': parse.ms.toFixed(0),
    'spin ms': planner.ms.toFixed(0),
    ratio: (planner.ms / parse.ms).toFixed(2),
    'spin peak MiB': planner.rssMiB.toFixed(0),
    diagnostics: planner.diagnostics,
  });
}
console.table(rows);
if (!quick) {
  const scale = byKey.get('100000-chain-1-0') / byKey.get('10000-chain-1-0');
  console.log(`100k / 10k (chain, one file): ${scale.toFixed(1)}x (goal <= 12x)`);
}
rmSync(root, { recursive: true, force: true });
