// npm run bench:cli — start-up cost of the CLI against a bare node start, measured in the same
// run, interleaved so machine noise hits every case alike; a row is the median of its runs.
// Goals: `spin --version` within 1.2x of `node -e 0`; `spin validate`, `spin plan` and
// `spin status` of a small package within 2x. `spin apply` of the same package, already applied
// (nothing to do), is shown for information.
//
// plan, status and apply run against a temp SPIN_HOME where the small package (4 storage
// commands) was applied once before the timed runs.
//
// SPIN_BASELINE=<another built checkout of spin> times that checkout's binary too, interleaved
// with this one's, so a change is compared with what it replaces in one run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const runs = Number(process.env.RUNS ?? 21);
const example = new URL('../examples/vm.spin.yaml', import.meta.url).pathname;
/** The file `spin` runs in a checkout: bin/run.cjs, or bin/run.js before there was one. */
const entry = (dir) =>
  [join(dir, 'bin/run.cjs'), join(dir, 'bin/run.js')].find((f) => existsSync(f));
const bins = [{ name: 'spin', path: entry(fileURLToPath(new URL('..', import.meta.url))) }];
if (process.env.SPIN_BASELINE)
  bins.push({ name: 'baseline', path: entry(process.env.SPIN_BASELINE) });

const home = mkdtempSync(join(tmpdir(), 'spin-bench-cli-'));
const small = join(home, 'small.spin.yaml');
writeFileSync(
  small,
  [
    'package: bench-small',
    'commands:',
    '  volume: { resource: storage, action: add_volume, params: { path: scratch } }',
    '  image: { resource: storage, action: create_image, needs: [volume], params: { volume: scratch, image: a.raw, image_size: 1 } }',
    '  grown: { resource: storage, action: resize_image, needs: [image], params: { volume: scratch, image: a.raw, image_size: 2 } }',
    '  copy: { resource: storage, action: copy_image, needs: [grown], params: { from_volume: scratch, from_image: a.raw, to_volume: scratch, to_image: b.raw } }',
    '',
  ].join('\n'),
);

/** Runs node with `args` in the bench's SPIN_HOME; throws with its stderr unless it exits 0. */
function run(args) {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, {
    env: { ...process.env, SPIN_HOME: home },
    encoding: 'utf8',
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0)
    throw new Error(`node ${args.join(' ')} exited ${result.status}\n${result.stderr}`);
  return { ms, stdout: result.stdout };
}

const goals = { '--version': 1.2, validate: 2, plan: 2, status: 2 };
const cases = [{ name: 'node -e 0', args: ['-e', '0'] }];
for (const bin of bins) {
  const prefix = bins.length > 1 ? `${bin.name}: ` : '';
  const spin = (label, args, check) =>
    cases.push({
      name: `${prefix}spin ${label}`,
      args: [bin.path, ...args],
      goal: goals[args[0]],
      check,
    });
  spin('--version', ['--version']);
  spin('validate examples/vm.spin.yaml', ['validate', example]);
  spin('plan (4 commands, applied)', ['plan', small], (out) => out.includes('unchanged'));
  spin('status', ['status'], (out) => out.includes('bench-small'));
  spin('apply (4 commands, nothing to do)', ['apply', small, '--output', 'plain'], (out) =>
    out.includes('Nothing to do'),
  );
}

try {
  run([bins[0].path, 'apply', small, '--output', 'plain']);
  const samples = new Map(cases.map((c) => [c.name, []]));
  for (let i = 0; i < runs; i++) {
    for (const c of cases) {
      const { ms, stdout } = run(c.args);
      if (c.check !== undefined && !c.check(stdout))
        throw new Error(`${c.name} printed something unexpected:\n${stdout}`);
      samples.get(c.name).push(ms);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = median(samples.get('node -e 0'));
  console.table(
    cases.map((c) => {
      const ms = median(samples.get(c.name));
      return {
        command: c.name,
        'median ms': ms.toFixed(1),
        'x node': (ms / base).toFixed(2),
        goal: c.goal === undefined ? '' : `<= ${c.goal}x`,
      };
    }),
  );
} finally {
  rmSync(home, { recursive: true, force: true });
}
