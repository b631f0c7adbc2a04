// npm run bench:apply — spin's apply beside peers that do the same work, measured in one run.
//
// The work: N directories (N = 100, 1,000, 10,000), independent or as 10 chains of N/10 (each
// needs the one before it in its chain). spin applies a package of N storage add_volume commands
// with the embedded broker (a fresh SPIN_HOME per run); the peers are a bash loop running one
// mkdir per directory, a plain Node script (mkdirSync each, then one fsync of a JSON file
// recording them) and `make -j4` with one mkdir target per directory. bash and plain Node make
// the directories in order, which satisfies both shapes; make schedules the graph as spin does.
// Every run is checked: exit 0 and all N directories present afterwards.
//
// Beside them, from today's benchmark: a 1,000-command storage package (10 volumes, 990 sparse
// images) applied, then re-applied with nothing to do, against `node -e 0`.
//
// Runs are interleaved (each round runs every tool once per case); a figure is the median over
// the rounds. Every run goes through GNU time (`/usr/bin/time -f %M`), whose figure is the peak
// resident set of the process and of the children it waited for; without GNU time the RSS column
// stays empty. The wrapper's own start (about 1 ms) is in every figure, node -e 0 included.
//
// Environment: SIZES (default 100,1000,10000), RUNS (rounds, default 3), RUNS_10K (rounds of the
// 10,000 cases, default 1), BENCH_DIR (where temporary homes go, default the system's),
// SPIN_BASELINE=<another built checkout of spin> measures that checkout's binary too, interleaved.
// The tables are printed and written to bench/.out/apply.json.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  chainCount,
  makefileText,
  mixedPackageText,
  packageText,
  volumeName,
} from './peers/workload.js';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const sizes = (process.env.SIZES ?? '100,1000,10000').split(',').map(Number);
const runs = Number(process.env.RUNS ?? 3);
const runs10k = Number(process.env.RUNS_10K ?? 1);
const mixedCount = 1000;
const benchDir = process.env.BENCH_DIR ?? tmpdir();
const timeBin = '/usr/bin/time';
const hasTime = spawnSync(timeBin, ['-f', '%M', 'true'], { stdio: 'ignore' }).status === 0;

const bins = [{ name: 'spin', root: here('..') }];
if (process.env.SPIN_BASELINE) bins.push({ name: 'baseline', root: process.env.SPIN_BASELINE });
for (const bin of bins) bin.path = join(bin.root, 'bin/run.js');

const shapes = ['independent', 'chains'];
const cases = sizes.flatMap((count) =>
  shapes.map((shape) => ({
    count,
    shape,
    label: `${count.toLocaleString('en')} ${shape === 'chains' ? `× ${chainCount} chains` : 'independent'}`,
    rounds: count >= 10_000 ? Math.min(runs, runs10k) : runs,
    samples: {},
  })),
);
const nodeStarts = [];
const mixed = Object.fromEntries(bins.map((b) => [b.name, { first: [], noop: [] }]));

/** Runs argv under GNU time in `dir`; output goes to files there. Throws unless it exits 0. */
function run(argv, { dir, cwd = dir, env = {} }) {
  const out = openSync(join(dir, 'stdout'), 'w');
  const err = openSync(join(dir, 'stderr'), 'w');
  const rssFile = join(dir, 'rss');
  const [command, ...args] = hasTime ? [timeBin, '-o', rssFile, '-f', '%M', ...argv] : argv;
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', out, err],
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  closeSync(out);
  closeSync(err);
  const stdout = readFileSync(join(dir, 'stdout'), 'utf8');
  if (result.status !== 0) {
    const stderr = readFileSync(join(dir, 'stderr'), 'utf8');
    throw new Error(`${argv.join(' ')} exited ${result.status}\n${stderr}${stdout.slice(-2000)}`);
  }
  const rssKb = hasTime ? Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) : null;
  return { ms, rssKb, stdout };
}

/** Calls fn with a fresh temporary directory, removed afterwards. */
function inTemp(fn) {
  const dir = mkdtempSync(join(benchDir, 'spin-bench-apply-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkDirectories(root, count, who) {
  for (let i = 0; i < count; i++) {
    const path = join(root, volumeName(i));
    if (!existsSync(path) || !statSync(path).isDirectory())
      throw new Error(`${who}: ${path} is missing after its run`);
  }
}

function nodeStart() {
  return inTemp((dir) => run([process.execPath, '-e', '0'], { dir }));
}

function spinCase(bin, { count, shape }) {
  return inTemp((dir) => {
    const file = join(dir, 'bench.spin.yaml');
    writeFileSync(file, packageText(count, shape));
    const home = join(dir, 'home');
    const result = run([process.execPath, bin.path, 'apply', file, '--output', 'json'], {
      dir,
      env: { SPIN_HOME: home },
    });
    const done = JSON.parse(result.stdout.trimEnd().split('\n').pop());
    if (done.type !== 'done' || done.summary.succeeded !== count)
      throw new Error(`${bin.name} apply did not succeed ${count} times: ${JSON.stringify(done)}`);
    checkDirectories(join(home, 'images'), count, bin.name);
    return result;
  });
}

const peers = {
  'plain node': (root, dir, count) =>
    run(
      [process.execPath, here('peers/plain-node.js'), root, String(count), join(dir, 'state.json')],
      {
        dir,
      },
    ),
  bash: (root, dir, count) =>
    run(['bash', here('peers/mkdir-loop.sh'), root, String(count)], { dir }),
  'make -j4': (root, dir, count, shape) => {
    const makefile = join(dir, 'Makefile');
    writeFileSync(makefile, makefileText(count, shape));
    return run(['make', '-j4', '-s', '-f', makefile], { dir, cwd: root });
  },
};

function peerCase(name, { count, shape }) {
  return inTemp((dir) => {
    const root = join(dir, 'images');
    mkdirSync(root);
    const result = peers[name](root, dir, count, shape);
    checkDirectories(root, count, name);
    return result;
  });
}

/** Today's package: its first apply, then a re-apply that must find nothing to do. */
function mixedApply(bin) {
  inTemp((dir) => {
    const file = join(dir, 'bench.spin.yaml');
    writeFileSync(file, mixedPackageText(mixedCount));
    const env = { SPIN_HOME: join(dir, 'home') };
    nodeStarts.push(nodeStart().ms);
    mixed[bin.name].first.push(
      run([process.execPath, bin.path, 'apply', file, '--output', 'json'], { dir, env }).ms,
    );
    nodeStarts.push(nodeStart().ms);
    const noop = run([process.execPath, bin.path, 'apply', file, '--output', 'plain'], {
      dir,
      env,
    });
    if (!noop.stdout.includes(`Nothing to do: ${mixedCount} commands up to date.`))
      throw new Error(`${bin.name} re-apply did something:\n${noop.stdout}`);
    mixed[bin.name].noop.push(noop.ms);
  });
}

const started = Date.now();
const loadAtStart = loadavg();
const rounds = Math.max(runs, ...cases.map((c) => c.rounds));
for (let r = 0; r < rounds; r++) {
  for (const c of cases.filter((c) => r < c.rounds)) {
    const record = (tool, { ms, rssKb }) => (c.samples[tool] ??= []).push({ ms, rssKb });
    const node = nodeStart();
    nodeStarts.push(node.ms);
    record('node -e 0', node);
    for (const bin of bins) record(bin.name, spinCase(bin, c));
    for (const name of Object.keys(peers)) record(name, peerCase(name, c));
  }
  if (r < runs) for (const bin of bins) mixedApply(bin);
  console.error(`round ${r + 1}/${rounds} done, ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ms = (c, tool) => median(c.samples[tool].map((s) => s.ms));
const rssMb = (c, tool) => (hasTime ? median(c.samples[tool].map((s) => s.rssKb)) / 1024 : null);
const fixed = (x, digits = 0) => (x === null ? '—' : x.toFixed(digits));
const times = (x) => `${x.toFixed(2)}x`;
const verdict = (x, goal) => (x <= goal ? 'met' : 'NOT met');

const table = cases.map((c) => {
  const spin = ms(c, 'spin');
  const ratio = spin / ms(c, 'plain node');
  const row = {
    case: c.label,
    'spin ms': fixed(spin),
    'ms/command': fixed(spin / c.count, 2),
    'plain node ms': fixed(ms(c, 'plain node')),
    'spin/plain node': times(ratio),
    'goal ≤ 4x': verdict(ratio, 4),
    'bash ms': fixed(ms(c, 'bash')),
    'make -j4 ms': fixed(ms(c, 'make -j4')),
    'spin peak RSS MB': fixed(rssMb(c, 'spin')),
  };
  if (c.samples.baseline) {
    row['baseline ms'] = fixed(ms(c, 'baseline'));
    row['spin/baseline'] = times(spin / ms(c, 'baseline'));
  }
  row.runs = c.samples.spin.length;
  return row;
});

const summary = [];
const find = (count, shape) => cases.find((c) => c.count === count && c.shape === shape);
const check = (what, x, goal) =>
  summary.push({ check: what, value: times(x), goal: `≤ ${goal}x`, verdict: verdict(x, goal) });
for (const shape of shapes) {
  const [small, large] = [find(1000, shape), find(10_000, shape)];
  if (small && large)
    check(`spin 10,000 / 1,000, ${shape}`, ms(large, 'spin') / ms(small, 'spin'), 11);
}
for (const count of sizes) {
  const [flat, chains] = [find(count, 'independent'), find(count, 'chains')];
  check(
    `${count.toLocaleString('en')}: chains / independent`,
    ms(chains, 'spin') / ms(flat, 'spin'),
    1.5,
  );
}
const nodeMs = median(nodeStarts);
for (const bin of bins) {
  const { first, noop } = mixed[bin.name];
  check(`${bin.name}: no-op re-apply of ${mixedCount} / node -e 0`, median(noop) / nodeMs, 3);
  summary.push({
    check: `${bin.name}: first apply of ${mixedCount} (10 volumes, 990 images)`,
    value: `${fixed(median(first))} ms`,
    goal: '',
    verdict: '',
  });
  summary.push({
    check: `${bin.name}: no-op re-apply of ${mixedCount}`,
    value: `${fixed(median(noop))} ms`,
    goal: '',
    verdict: '',
  });
}
summary.push({ check: 'node -e 0', value: `${fixed(nodeMs)} ms`, goal: '', verdict: '' });

console.table(table);
console.table(summary);

const commitOf = (root) => {
  const git = spawnSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
  return git.status === 0 ? git.stdout.trim() : null;
};
const outDir = here('.out');
mkdirSync(outDir, { recursive: true });
writeFileSync(
  join(outDir, 'apply.json'),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      seconds: Math.round((Date.now() - started) / 1000),
      node: process.version,
      cpus: cpus().length,
      loadavg: { start: loadAtStart, end: loadavg() },
      settings: { sizes, runs, runs10k },
      rss: hasTime ? 'GNU time %M (KiB), peak of the process and the children it waited for' : null,
      bins: bins.map((b) => ({ name: b.name, root: b.root, commit: commitOf(b.root) })),
      table,
      summary,
      cases: cases.map(({ count, shape, samples }) => ({ count, shape, samples })),
      mixed: { count: mixedCount, ...mixed, nodeStarts },
    },
    null,
    2,
  ) + '\n',
);
console.error(`wrote ${join(outDir, 'apply.json')}`);
