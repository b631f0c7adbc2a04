// npm run torture [-- --seconds 600 --seed N --faults apply-kill,daemon-kill]: kill -9 and pause spin at random moments over a
// mixed package, round after round, and check after each that nothing was lost, nothing ran twice
// at once, and nothing was left behind. Seeded (the seed is printed; --seed replays a run) and
// bounded in time; it stops by itself. Kept out of `npm test`: a round takes seconds.
//
// A round, in a fresh SPIN_HOME, picks one fault:
// - apply-kill: an embedded `spin apply` killed with SIGKILL after a random delay;
// - destroy-kill: an applied package, then `spin destroy` killed with SIGKILL;
// - daemon-kill: an apply through the daemon, the daemon killed with SIGKILL, then started again;
// - daemon-pause: an apply through a daemon paused with SIGSTOP (SPIN_DAEMON_TIMEOUT=2s);
// - disk-full: an apply on a home that is a small tmpfs, filled to a random point (as root);
// - agent-kill: an apply through a daemon whose agents run as `spin agent` processes, the shell
//   agent killed with SIGKILL and replaced.
// Then it converges with one `spin apply` (no daemon), and checks: it exits 0; `spin plan` shows
// no change; no shell command of the package ever ran beside itself (each command notes its pid
// while it runs and reports an overlap); no lock, pid or temp file is left.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const seconds = arg('seconds', 600);
const seed = arg('seed', Math.floor(Math.random() * 2 ** 32));
console.log(
  `spin torture: seed ${seed} for ${seconds} s (replay: npm run torture -- --seed ${seed})`,
);

let state = seed >>> 0;
/** mulberry32: the next number in [0, 1). */
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}
const pick = (list) => list[Math.floor(random() * list.length)];

const bin = new URL('../bin/run.js', import.meta.url).pathname;

/** A package of volumes, images and shell commands that note overlaps of themselves. */
function packageText(home) {
  const lines = ['package: torture', 'commands:'];
  lines.push('  vol: { resource: storage, action: add_volume, params: { path: data } }');
  for (let i = 0; i < 6; i++) {
    lines.push(
      `  img${i}: { resource: storage, action: create_image, needs: [vol], params: { volume: data, image: i${i}.raw, image_size: 1 } }`,
    );
  }
  for (let i = 0; i < 6; i++) {
    const lock = join(home, `running.sh${i}`);
    const trace = join(home, 'trace');
    const script = [
      // A killed program whose parent died stays a zombie where nothing reaps orphans: not running.
      `p=$(cat ${lock} 2>/dev/null); if [ -n "$p" ] && [ -e /proc/$p/stat ] && ! grep -q ') Z ' /proc/$p/stat; then echo "OVERLAP sh${i} (pid $p runs)" >> ${trace}; fi`,
      `echo $$ > ${lock}`,
      `echo "start sh${i}" >> ${trace}`,
      `sleep ${(0.2 + random() * 2).toFixed(1)}`,
      `echo "end sh${i}" >> ${trace}`,
      `rm -f ${lock}`,
    ].join('; ');
    const needs = i === 0 ? '[vol]' : `[sh${i - 1}]`;
    lines.push(
      `  sh${i}: { resource: shell, action: run, needs: ${needs}, params: { argv: [sh, -c, ${JSON.stringify(script)}] } }`,
    );
  }
  return lines.join('\n') + '\n';
}

function run(args, env, options = {}) {
  return spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: options.timeout ?? 120_000,
  });
}

function start(args, env) {
  return spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const exited = (child) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', resolve));

async function daemonUp(env, args = ['--allow-shell']) {
  const daemon = start(['daemon', 'run', ...args], env);
  let out = '';
  await new Promise((resolve, reject) => {
    daemon.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('"listening"')) resolve();
    });
    daemon.once('exit', () => reject(new Error(`the daemon exited:\n${out}`)));
  });
  return daemon;
}

async function kill(child, signal = 'SIGKILL') {
  child.kill(signal);
  await exited(child);
}

const faults = {
  async 'apply-kill'(env, file) {
    const apply = start(['apply', file, '--allow-shell', '--output', 'plain'], env);
    await sleep(200 + random() * 3000);
    await kill(apply);
  },
  async 'destroy-kill'(env, file) {
    const first = run(['apply', file, '--allow-shell', '--output', 'plain'], env);
    if (first.status !== 0) throw new Error(`the first apply failed:\n${first.stderr}`);
    const destroy = start(['destroy', 'torture', '--output', 'plain'], env);
    await sleep(100 + random() * 1500);
    await kill(destroy);
  },
  async 'daemon-kill'(env, file) {
    let daemon = await daemonUp(env);
    const apply = start(['apply', file, '--output', 'plain'], env);
    await sleep(300 + random() * 2500);
    await kill(daemon);
    await exited(apply);
    daemon = await daemonUp(env);
    await kill(daemon, 'SIGTERM');
  },
  async 'agent-kill'(env, file) {
    // Agents as their own processes: the shell agent is killed mid-run and another takes over
    // its queue; the command it held must not run beside its next attempt.
    const daemon = await daemonUp(env, ['--no-agents']);
    const storage = start(['agent', 'storage'], env);
    let shell = start(['agent', 'shell', '--allow-shell'], env);
    const apply = start(['apply', file, '--output', 'plain'], env);
    await sleep(500 + random() * 3000);
    await kill(shell);
    shell = start(['agent', 'shell', '--allow-shell'], env);
    await Promise.race([exited(apply), sleep(60_000)]);
    const hung = apply.exitCode === null && apply.signalCode === null;
    await Promise.all([kill(shell, 'SIGTERM'), kill(storage, 'SIGTERM')]);
    if (hung) await kill(apply);
    await kill(daemon, 'SIGTERM');
    if (hung)
      throw new Error('the apply did not end within 60 s of its shell agent being replaced');
  },
  async 'disk-full'(env, file, home) {
    // The home is a small tmpfs (root only: skipped otherwise); the apply meets a full disk at a
    // random point, must end cleanly, and the space is freed before the convergence.
    if (process.getuid?.() !== 0) return;
    const filler = join(home, 'filler');
    const free = statfsSync(home);
    const leave = Math.floor(random() * 400_000);
    writeFileSync(filler, Buffer.alloc(Math.max(0, free.bavail * free.bsize - leave)));
    const apply = run(['apply', file, '--allow-shell', '--output', 'plain'], env);
    rmSync(filler);
    if (apply.status !== 0 && !/No space left|is full/.test(apply.stdout + apply.stderr)) {
      throw new Error(`the apply on a full disk exited ${apply.status}:\n${apply.stderr}`);
    }
    if (/\n\s+at /.test(apply.stderr)) throw new Error(`a stack trace:\n${apply.stderr}`);
  },
  async 'daemon-pause'(env, file) {
    const daemon = await daemonUp(env);
    const apply = start(['apply', file, '--output', 'plain'], {
      ...env,
      SPIN_DAEMON_TIMEOUT: '2s',
    });
    await sleep(300 + random() * 2000);
    daemon.kill('SIGSTOP');
    await Promise.race([exited(apply), sleep(20_000)]);
    const hung = apply.exitCode === null && apply.signalCode === null;
    daemon.kill('SIGCONT');
    await kill(daemon, 'SIGTERM');
    if (hung) {
      await kill(apply);
      throw new Error('the apply did not end within 20 s of its daemon pausing');
    }
  },
};

/** What is wrong with a home after its convergence, if anything. */
function check(home, file, env) {
  const problems = [];
  const converge = run(['apply', file, '--allow-shell', '--output', 'plain'], env);
  if (converge.status !== 0)
    problems.push(`converging apply exited ${converge.status}: ${converge.stderr.trim()}`);
  const plan = run(['plan', file], env);
  if (!plan.stdout.includes('No changes')) problems.push(`plan after convergence:\n${plan.stdout}`);
  const trace = existsSync(join(home, 'trace')) ? readFileSync(join(home, 'trace'), 'utf8') : '';
  for (const line of trace.split('\n')) if (line.startsWith('OVERLAP')) problems.push(line);
  const left = readdirSync(home).filter(
    (f) => f.endsWith('.tmp') || f === 'state.json.lock' || f.startsWith('spind.pid'),
  );
  if (left.length > 0) problems.push(`left behind: ${left.join(', ')}`);
  const data = join(home, 'images', 'data');
  const temps = existsSync(data) ? readdirSync(data).filter((f) => f.startsWith('.spin-tmp-')) : [];
  if (temps.length > 0) problems.push(`image temp files left: ${temps.join(', ')}`);
  return problems;
}

const named = process.argv.indexOf('--faults');
/** The faults to draw from: all, or those `--faults a,b` names. */
const only = named > 0 ? process.argv[named + 1].split(',') : Object.keys(faults);
for (const name of only) if (!(name in faults)) throw new Error(`no fault '${name}'`);
const until = Date.now() + seconds * 1000;
const counts = {};
const findings = [];
let rounds = 0;
while (Date.now() < until) {
  const home = mkdtempSync(join(process.env.TORTURE_DIR ?? tmpdir(), 'spin-torture-'));
  const fault = pick(only);
  const mounted =
    fault === 'disk-full' &&
    process.getuid?.() === 0 &&
    spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', home]).status === 0;
  const file = join(home, 'torture.spin.yaml');
  writeFileSync(file, packageText(home));
  const env = { SPIN_HOME: home };
  counts[fault] = (counts[fault] ?? 0) + 1;
  rounds++;
  try {
    await faults[fault](env, file, home);
    const problems = check(home, file, env);
    if (problems.length > 0) findings.push({ round: rounds, fault, home, problems });
  } catch (error) {
    findings.push({ round: rounds, fault, home, problems: [String(error)] });
  }
  if (mounted) spawnSync('umount', ['-l', home]);
  if (findings.at(-1)?.round !== rounds) rmSync(home, { recursive: true, force: true });
  process.stdout.write(
    `round ${rounds} ${fault}: ${findings.at(-1)?.round === rounds ? 'FINDING' : 'ok'}\n`,
  );
}
console.log(`\n${rounds} rounds, seed ${seed}: ${JSON.stringify(counts)}`);
for (const f of findings)
  console.log(`round ${f.round} (${f.fault}, ${f.home}):\n  ${f.problems.join('\n  ')}`);
console.log(findings.length === 0 ? 'no findings' : `${findings.length} findings`);
process.exit(findings.length === 0 ? 0 : 1);
