// npm run bench:cli — start-up cost of the CLI against a bare node start, measured in the same
// run, interleaved so machine noise hits all three alike. Goals: `spin --version` within 3x of
// `node -e 0`, `spin validate` of a small file within 4x.
import { spawnSync } from 'node:child_process';

const bin = new URL('../bin/run.js', import.meta.url).pathname;
const example = new URL('../examples/vm.spin.yaml', import.meta.url).pathname;
const runs = Number(process.env.RUNS ?? 21);
const cases = {
  'node -e 0': ['-e', '0'],
  'spin --version': [bin, '--version'],
  'spin validate examples/vm.spin.yaml': [bin, 'validate', example],
};

const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < runs; i++) {
  for (const [name, args] of Object.entries(cases)) {
    const start = process.hrtime.bigint();
    const result = spawnSync(process.execPath, args, { stdio: 'ignore' });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (result.status !== 0) throw new Error(`${name} exited ${result.status}`);
    samples[name].push(ms);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(samples['node -e 0']);
const goals = { 'spin --version': 3, 'spin validate examples/vm.spin.yaml': 4 };
console.table(
  Object.keys(cases).map((name) => ({
    command: name,
    'median ms': median(samples[name]).toFixed(1),
    'x node': (median(samples[name]) / base).toFixed(2),
    goal: goals[name] ? `<= ${goals[name]}x` : '',
  })),
);
