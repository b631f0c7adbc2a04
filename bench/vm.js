// npm run bench:vm — the VM path against bare qemu, and what spin's waits cost.
//
// Start: `spin apply` of a package whose VM is stopped (its `start` runs), beside the same qemu
// command line started by hand (the argv is read from /proc of a qemu spin launched, so it is the
// very same), measured to the same point: the QMP monitor answering `query-status` (spin's start
// waits for that too, then records it and exits). Also a first apply in a fresh home (the
// accelerator not decided yet), an apply with nothing to do (the CLI's own cost), and the start
// action alone in this process (the VM path without the CLI). Runs are interleaved; rows are
// medians. Goals: apply ≤ 300 ms over bare qemu; a first apply in a home no slower than a later
// one (the KVM decision is off the critical path).
//
// Waits: each in a process of its own (bench/vm-wait.js, the emulation agent imported from
// dist/), the CPU time that process spends while it waits for a guest that ignores ACPI powerdown
// (the stop's timeout, before the forced stop) and while a start waits for a console that never
// matches `ready_when`. Goal: ≤ 50 ms of CPU over a 30 s wait.
//
// RUNS=9 rounds of starts; WAIT=30 seconds per wait. SPIN_BASELINE=<another built checkout>
// measures that checkout too, interleaved with this one, so a change is compared with what it
// replaces in one run. The tiny guest (kernel + busybox initrd) is the one the emulation tests
// build and cache in ~/.cache/spin-test; built here if missing.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const runs = Number(process.env.RUNS ?? 9);
const waitSeconds = Number(process.env.WAIT ?? 30);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The tiny guest of the emulation tests (test/support/tiny-vm.ts, bundled here to run it). */
async function tinyGuest() {
  const dir = mkdtempSync(join(tmpdir(), 'spin-bench-vm-build-'));
  try {
    const outfile = join(dir, 'tiny-vm.mjs');
    await build({
      entryPoints: [join(root, 'test/support/tiny-vm.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      outfile,
      logLevel: 'error',
    });
    // Resolved from the checkout, where execa is installed.
    const copy = join(root, 'bench', `.tiny-vm-${process.pid}.mjs`);
    copyFileSync(outfile, copy);
    try {
      return await (await import(copy)).tinyVm();
    } finally {
      rmSync(copy, { force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const tiny = await tinyGuest();
const packageText = `package: bench-vm
commands:
  config:
    resource: emulation
    action: write_config
    params:
      id: 1
      vm:
        name: bench
        cpus: 1
        memory: 128
        images: []
        kernel: boot/vmlinuz
        initrd: boot/stubborn.cpio.gz
        append: ${JSON.stringify(tiny.append)}
  start: { resource: emulation, action: start, needs: [config], params: { id: 1 } }
`;

const homes = [];
/** A fresh SPIN_HOME with the guest's files and the package; nothing decided or started yet. */
function freshHome() {
  const home = mkdtempSync(join(tmpdir(), 'spin-bench-vm-'));
  homes.push(home);
  mkdirSync(join(home, 'images', 'boot'), { recursive: true });
  copyFileSync(tiny.kernel, join(home, 'images', 'boot', 'vmlinuz'));
  copyFileSync(tiny.stubborn, join(home, 'images', 'boot', 'stubborn.cpio.gz'));
  copyFileSync(tiny.graceful, join(home, 'images', 'boot', 'graceful.cpio.gz'));
  writeFileSync(join(home, 'vm.spin.yaml'), packageText);
  return home;
}

function spinApply(spin, home, expect) {
  const start = performance.now();
  const result = spawnSync(process.execPath, [spin, 'apply', join(home, 'vm.spin.yaml')], {
    env: { ...process.env, SPIN_HOME: home },
    encoding: 'utf8',
  });
  const ms = performance.now() - start;
  if (result.status !== 0 || !expect.test(result.stdout))
    throw new Error(`spin apply exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
  return ms;
}

function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

/** A QMP session by hand: connect, greeting, capabilities; `ask` runs one command. */
function qmpSession(path) {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    let buffer = '';
    const waiting = [];
    socket.setEncoding('utf8');
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const message = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if ('QMP' in message || 'return' in message || 'error' in message)
          waiting.shift()?.(message);
      }
    });
    const next = () => new Promise((r) => waiting.push(r));
    const ask = (command) => {
      const reply = next();
      socket.write(`${JSON.stringify({ execute: command })}\n`);
      return reply;
    };
    next()
      .then(() => ask('qmp_capabilities'))
      .then(() => resolve({ ask, close: () => socket.destroy() }), reject);
  });
}

/** Ends the VM of `home` by hand (QMP quit), so that the next apply starts it again. */
async function quitVm(home) {
  const dir = join(home, 'vms', '1');
  const pid = Number(readFileSync(join(dir, 'qemu.pid'), 'utf8'));
  const qmp = await qmpSession(join(dir, 'qmp.sock'));
  await qmp.ask('quit');
  qmp.close();
  while (alive(pid)) await sleep(5);
  rmSync(join(dir, 'qemu.pid'), { force: true });
  rmSync(join(dir, 'qmp.sock'), { force: true });
}

/** The qemu command line spin used for the VM of `home` (running now). */
function argvOf(home) {
  const pid = Number(readFileSync(join(home, 'vms', '1', 'qemu.pid'), 'utf8'));
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1, -1);
}

/** Starts qemu with `argv` by hand and waits until QMP answers query-status, as spin's start does. */
async function bareQemu(home, argv) {
  const dir = join(home, 'vms', '1');
  const start = performance.now();
  const child = spawn('qemu-system-x86_64', argv, {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`bare qemu exited ${code}: ${stderr}`);
  const qmp = await qmpSession(join(dir, 'qmp.sock'));
  const status = await qmp.ask('query-status');
  const ms = performance.now() - start;
  qmp.close();
  if (status.return?.status !== 'running') throw new Error(`bare qemu: ${JSON.stringify(status)}`);
  return ms;
}

// ---- starts
const started = /start\s+succeeded/;
const builds = [{ name: 'spin', root }];
if (process.env.SPIN_BASELINE) builds.push({ name: 'baseline', root: process.env.SPIN_BASELINE });
for (const b of builds) {
  b.bin = join(b.root, 'bin/run.js');
  b.home = freshHome();
  spinApply(b.bin, b.home, started); // warm-up; decides the accelerator of this home
  b.samples = { apply: [], first: [], noop: [], action: [] };
  const { emulationAgent } = await import(join(b.root, 'dist/agents/emulation/emulation-agent.js'));
  const { agentRoots } = await import(join(b.root, 'dist/agents/agent-roots.js'));
  const start = emulationAgent().actions.get('start');
  const ctx = { signal: new AbortController().signal, roots: agentRoots(b.home), progress() {} };
  /** The start action alone, in this process: the VM path without the CLI around it. */
  b.startAction = async () => {
    const begin = performance.now();
    const { output } = await start.run({ id: 1 }, ctx);
    const ms = performance.now() - begin;
    if (!/started/.test(output)) throw new Error(output);
    return ms;
  };
}
const argv = argvOf(builds[0].home);
for (const b of builds) await quitVm(b.home);
const bareSamples = [];
for (let r = 0; r < runs; r++) {
  bareSamples.push(await bareQemu(builds[0].home, argv));
  await quitVm(builds[0].home);
  for (const b of builds) {
    b.samples.action.push(await b.startAction());
    await quitVm(b.home);
    b.samples.apply.push(spinApply(b.bin, b.home, started));
    b.samples.noop.push(spinApply(b.bin, b.home, /Nothing to do/));
    await quitVm(b.home);
    const fresh = freshHome();
    b.samples.first.push(spinApply(b.bin, fresh, started));
    await quitVm(fresh);
    rmSync(fresh, { recursive: true, force: true });
  }
}
const bare = median(bareSamples);
const row = (what, xs, goal = '') => ({
  run: what,
  'median ms': median(xs).toFixed(0),
  'over bare qemu': (median(xs) - bare).toFixed(0),
  goal,
});
const rows = [row('bare qemu, same argv, until QMP answers', bareSamples)];
for (const b of builds) {
  rows.push(
    row(`${b.name}: start action alone, in process`, b.samples.action),
    row(`${b.name}: apply, start a stopped VM`, b.samples.apply, '<= 300'),
    row(`${b.name}: apply, first in a fresh home`, b.samples.first, '<= apply + noise'),
    row(`${b.name}: apply, nothing to do (VM running)`, b.samples.noop),
  );
}
console.table(rows);

// ---- admission: what a start spends deciding whether its VM fits (the node's lock, a measure
// of the node and of the VMs that run, the check), with the bench's VM running, then with 20
// more qemus (paused, 16 MiB each) in the same home.
const admissionRows = [];
{
  const b = builds[0];
  const { VmAdmission, defaultAdmission } = await import(
    join(root, 'dist/agents/emulation/admission.js')
  );
  // 21 one-CPU VMs on a 2-core machine are more than the default 4x CPU overcommit allows.
  const admission = new VmAdmission({ ...defaultAdmission, cpuOvercommit: 64 });
  const ctx = {
    signal: new AbortController().signal,
    roots: { home: b.home, vms: join(b.home, 'vms') },
  };
  const probe = { name: 'probe', cpus: 1, memory: 128, images: [], ports: [] };
  const admit = async () => {
    const samples = [];
    for (let i = 0; i < 50; i++) {
      const begin = performance.now();
      await admission.launch(ctx, 'probe', probe, async () => undefined);
      samples.push(performance.now() - begin);
    }
    return median(samples);
  };
  await b.startAction();
  admissionRows.push({ running: '1 VM', 'median ms': (await admit()).toFixed(2) });
  const idle = [];
  for (let i = 0; i < 20; i++) {
    const dir = join(b.home, 'vms', `idle-${i}`);
    mkdirSync(dir, { recursive: true });
    const pidFile = join(dir, 'qemu.pid');
    const qemu = spawnSync('qemu-system-x86_64', [
      '-machine', 'pc', '-accel', 'tcg', '-nodefaults', '-no-user-config', '-display', 'none',
      '-m', '16', '-S', '-pidfile', pidFile, '-daemonize',
    ]); // prettier-ignore
    if (qemu.status !== 0) throw new Error(`idle qemu: ${qemu.stderr}`);
    idle.push(Number(readFileSync(pidFile, 'utf8')));
  }
  try {
    admissionRows.push({ running: '21 VMs', 'median ms': (await admit()).toFixed(2) });
  } finally {
    for (const pid of idle) process.kill(pid, 'SIGKILL');
  }
  await quitVm(b.home);
}
console.table(admissionRows);

// ---- waits, each in a process of its own (as an agent's is), running the build's agent
const waitRows = [];
for (const b of builds) {
  for (const kind of ['stop', 'ready']) {
    const worker = spawnSync(
      process.execPath,
      [
        new URL('./vm-wait.js', import.meta.url).pathname,
        b.root,
        b.home,
        kind,
        String(waitSeconds),
      ],
      { encoding: 'utf8' },
    );
    if (worker.status !== 0) throw new Error(`vm-wait ${kind}: ${worker.stderr}`);
    const { cpuMs } = JSON.parse(worker.stdout);
    waitRows.push({
      wait:
        kind === 'stop'
          ? `${b.name}: stop, guest ignores powerdown, ${waitSeconds} s`
          : `${b.name}: start, ready_when never matches, ${waitSeconds} s`,
      'CPU ms': cpuMs.toFixed(0),
      goal: '<= 50',
    });
  }
}
console.table(waitRows);
for (const h of homes) rmSync(h, { recursive: true, force: true });
