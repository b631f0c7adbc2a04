// npm run bench:apply — a storage-only package of 1,000 commands (10 volumes, 990 sparse raw
// images): the first apply, and a re-apply with nothing to do, each beside `node -e 0` measured
// in the same run. Goal: the no-op re-apply within 10x of a bare node start.
//
// SPIN_BASELINE=<another built checkout of spin> measures that checkout's binary too, runs
// interleaved with this one's, so a change is compared with what it replaces in one run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const count = Number(process.env.COMMANDS ?? 1000);
const volumes = 10;
const runs = Number(process.env.RUNS ?? 5);
const bins = [{ name: 'spin', path: new URL('../bin/run.js', import.meta.url).pathname }];
if (process.env.SPIN_BASELINE)
  bins.push({ name: 'baseline', path: join(process.env.SPIN_BASELINE, 'bin/run.js') });

function packageText() {
  const lines = ['package: bench-apply', 'commands:'];
  for (let v = 0; v < volumes; v++)
    lines.push(`  vol${v}: { resource: storage, action: add_volume, params: { path: vol${v} } }`);
  for (let i = 0; i < count - volumes; i++) {
    const v = i % volumes;
    lines.push(
      `  img${i}: { resource: storage, action: create_image, needs: [vol${v}], params: { volume: vol${v}, image: img${i}.raw, image_size: 1 } }`,
    );
  }
  return lines.join('\n') + '\n';
}

function time(args, env) {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0)
    throw new Error(`${args.join(' ')} exited ${result.status}\n${result.stderr}`);
  return { ms, stdout: result.stdout };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const node = [];
const times = new Map(bins.map((b) => [b.name, { first: [], noop: [] }]));
for (let r = 0; r < runs; r++) {
  for (const bin of bins) {
    const home = mkdtempSync(join(tmpdir(), 'spin-bench-apply-'));
    const file = join(home, 'bench.spin.yaml');
    writeFileSync(file, packageText());
    node.push(time(['-e', '0']).ms);
    const a = time([bin.path, 'apply', file, '--output', 'json'], { SPIN_HOME: home });
    times.get(bin.name).first.push(a.ms);
    node.push(time(['-e', '0']).ms);
    const b = time([bin.path, 'apply', file, '--output', 'plain'], { SPIN_HOME: home });
    if (!b.stdout.includes(`Nothing to do: ${count} commands up to date.`))
      throw new Error(`re-apply did something:\n${b.stdout}`);
    times.get(bin.name).noop.push(b.ms);
    rmSync(home, { recursive: true, force: true });
  }
}
const base = median(node);
const rows = [{ run: 'node -e 0', 'median ms': base.toFixed(0), 'x node': '1.00' }];
for (const [name, { first, noop }] of times) {
  rows.push(
    {
      run: `${name}: first apply (${count} commands)`,
      'median ms': median(first).toFixed(0),
      'x node': (median(first) / base).toFixed(1),
      'commands/s': ((count * 1000) / median(first)).toFixed(0),
    },
    {
      run: `${name}: re-apply, nothing to do`,
      'median ms': median(noop).toFixed(0),
      'x node': (median(noop) / base).toFixed(1),
      goal: '<= 10x',
    },
  );
}
console.table(rows);
