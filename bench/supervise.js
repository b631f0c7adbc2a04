// npm run bench:supervise — what VM supervision costs and how fast it brings a VM back.
//
// Restart: a daemon (`spin daemon run`, its built-in agents) supervises two tiny VMs whose
// `restart` blocks differ only in `delay` (DELAYS, default 0ms and 1s; `interval: 0`, so the delay
// never doubles). Each round waits until a VM's guest is up (its console shows the marker), kills
// its qemu with SIGKILL and reads the supervisor's audit events: detection is the kill to the
// `exited` event, restart the kill to `restarted` (the new qemu launched and its QMP answering,
// the supervision record written). Both against the configured delay and against the wait the
// supervisor drew (the delay less up to a fifth of jitter). KILLS rounds per VM; p50 and p95.
//
// Idle: the daemon's CPU time (utime + stime from /proc) over MINUTE seconds with no VM, then
// with VMS tiny VMs running and supervised (each holds a QMP connection open in the daemon),
// measured one after the other in the same daemon. The qemus' own CPU over the same minute is
// shown for scale: under TCG (no KVM here) idle guests still cost the host CPU.
//
// The tiny guest (kernel + busybox initrd) is the one the emulation tests build and cache in
// ~/.cache/spin-test; built here if missing.
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyGuest } from '../scripts/tiny-guest.js';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin/run.js');
const kills = Number(process.env.KILLS ?? 20);
const delays = (process.env.DELAYS ?? '0ms,1s').split(',');
const idleVms = Number(process.env.VMS ?? 20);
const minuteMs = Number(process.env.MINUTE ?? 60) * 1000;
const ticksPerSecond =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

const quantile = (xs, q) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
const ms = (x) => `${Math.round(x)} ms`;

const tiny = await tinyGuest();
const home = mkdtempSync(join(tmpdir(), 'spin-bench-sup-'));
mkdirSync(join(home, 'images', 'boot'), { recursive: true });
copyFileSync(tiny.kernel, join(home, 'images', 'boot', 'vmlinuz'));
copyFileSync(tiny.graceful, join(home, 'images', 'boot', 'initrd.gz'));
const env = { ...process.env, SPIN_HOME: home };

/** A package of VMs `ids`, each with `restart` as given. */
function vmPackage(name, vms) {
  const commands = vms.map(
    ({ id, restart }) => `  config-${id}:
    resource: emulation
    action: write_config
    params:
      id: ${id}
      vm: { name: vm-${id}, cpus: 1, memory: 96, images: [], kernel: boot/vmlinuz, initrd: boot/initrd.gz, append: ${JSON.stringify(tiny.append)} }
  start-${id}:
    resource: emulation
    action: start
    needs: [config-${id}]
    params: { id: ${id}, ready_when: ${JSON.stringify(tiny.marker)}, ready_timeout: 5m, restart: ${restart} }
`,
  );
  const file = join(home, `${name}.spin.yaml`);
  writeFileSync(
    file,
    `package: ${name}\ndefaults: { timeout: 10m }\ncommands:\n${commands.join('')}`,
  );
  return file;
}

function spin(...args) {
  const result = spawnSync(process.execPath, [bin, ...args, '--output', 'plain'], {
    env,
    encoding: 'utf8',
  });
  if (result.status !== 0)
    throw new Error(
      `spin ${args.join(' ')} exited ${result.status}:\n${result.stdout}\n${result.stderr}`,
    );
  return result.stdout;
}

/** Resolves once `accept(text of path)` is true, re-reading when its directory changes. */
function fileUntil(path, accept, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const look = () => {
      let text = '';
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        return;
      }
      const value = accept(text);
      if (value !== undefined) {
        clearTimeout(timer);
        watcher.close();
        resolve(value);
      }
    };
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`timed out waiting on ${path}`));
    }, timeoutMs);
    const watcher = watch(join(path, '..'), look);
    look();
  });
}

const audit = join(home, 'audit.ndjson');
const vmEvents = (text) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{"type":"vm"'))
    .map((l) => JSON.parse(l));

function cpuMsOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

function pidOf(id) {
  return Number(readFileSync(join(home, 'vms', String(id), 'qemu.pid'), 'utf8'));
}

const daemon = spawn(process.execPath, [bin, 'daemon', 'run'], {
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise((resolve, reject) => {
  let out = '';
  daemon.stdout.on('data', (chunk) => {
    out += chunk;
    if (out.includes('"type":"listening"')) resolve();
  });
  daemon.once('exit', (code) => reject(new Error(`the daemon exited ${code}`)));
});

try {
  // ---- restart latency
  const vms = delays.map((delay, i) => ({
    id: i + 1,
    delay,
    restart: `{ interval: 0, delay: ${delay} }`,
    samples: { detect: [], restart: [], overWait: [], wait: [] },
    configuredMs: 0,
  }));
  for (const vm of vms) {
    const m = /^(\d+)(ms|s)$/.exec(vm.delay);
    vm.configuredMs = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  }
  spin('apply', vmPackage('restarts', vms));
  for (let round = 1; round <= kills; round++) {
    for (const vm of vms) {
      const console = join(home, 'vms', String(vm.id), 'console.log');
      await fileUntil(console, (text) => (text.includes(tiny.marker) ? true : undefined));
      const killedAt = Date.now();
      process.kill(pidOf(vm.id), 'SIGKILL');
      const events = await fileUntil(audit, (text) => {
        const mine = vmEvents(text).filter((e) => e.vm === String(vm.id));
        return mine.filter((e) => e.event === 'restarted').length >= round ? mine : undefined;
      });
      const last = (name) => events.filter((e) => e.event === name).at(-1);
      const wait = last('restarting').waitMs;
      vm.samples.detect.push(last('exited').at - killedAt);
      vm.samples.restart.push(last('restarted').at - killedAt);
      vm.samples.overWait.push(last('restarted').at - killedAt - wait);
      vm.samples.wait.push(wait);
    }
  }
  console.log(
    `\nkill -9 of a supervised qemu to its replacement running: ${kills} kills per delay`,
  );
  console.table(
    vms.map((vm) => ({
      'configured delay': vm.delay,
      'detection p50 / p95': `${ms(quantile(vm.samples.detect, 0.5))} / ${ms(quantile(vm.samples.detect, 0.95))}`,
      'restart p50 / p95': `${ms(quantile(vm.samples.restart, 0.5))} / ${ms(quantile(vm.samples.restart, 0.95))}`,
      'restart − delay, p50': ms(quantile(vm.samples.restart, 0.5) - vm.configuredMs),
      'restart − drawn wait, p50 / p95': `${ms(quantile(vm.samples.overWait, 0.5))} / ${ms(quantile(vm.samples.overWait, 0.95))}`,
    })),
  );
  spin('destroy', 'restarts');

  // ---- idle CPU of the supervisor
  /** The CPU of the daemon and of `qemus` over the measured time, in ms per minute. */
  const idle = async (qemus = []) => {
    // What came before (a destroy, boots) settles first: its garbage is not the idle daemon's.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const total = () => qemus.reduce((sum, pid) => sum + cpuMsOf(pid), 0);
    const before = { daemon: cpuMsOf(daemon.pid), qemus: total() };
    await new Promise((resolve) => setTimeout(resolve, minuteMs));
    const scale = (x) => Math.round((x * 60_000) / minuteMs);
    return {
      daemon: scale(cpuMsOf(daemon.pid) - before.daemon),
      qemus: scale(total() - before.qemus),
    };
  };
  const none = await idle();
  const ids = Array.from({ length: idleVms }, (_, i) => 100 + i);
  const started = Date.now();
  spin(
    'apply',
    vmPackage(
      'idle',
      ids.map((id) => ({ id, restart: '{}' })),
    ),
  );
  const bootMs = Date.now() - started;
  const withVms = await idle(ids.map(pidOf));
  const meanwhile = vmEvents(readFileSync(audit, 'utf8')).filter((e) => Number(e.vm) >= 100);
  spin('destroy', 'idle');
  const noneAfter = await idle();
  console.log(`\nidle supervisor: CPU over ${minuteMs / 1000} s, scaled to a minute`);
  console.table([
    { case: 'daemon, no VM', 'daemon CPU ms / min': none.daemon, 'qemus CPU ms / min': '' },
    {
      case: `daemon, ${idleVms} supervised VMs (started in ${(bootMs / 1000).toFixed(0)} s)`,
      'daemon CPU ms / min': withVms.daemon,
      'qemus CPU ms / min': withVms.qemus,
    },
    {
      case: 'daemon, no VM again (after their destroy)',
      'daemon CPU ms / min': noneAfter.daemon,
      'qemus CPU ms / min': '',
    },
  ]);
  if (meanwhile.length > 0) console.log(`note: ${meanwhile.length} supervision events while idle`);
} finally {
  daemon.kill('SIGTERM');
  await new Promise((resolve) => daemon.once('exit', resolve));
  // Whatever a failure left running: the qemus of this home, and only those.
  for (const id of readdirSync(join(home, 'vms'), { withFileTypes: true })) {
    try {
      const pid = pidOf(id.name);
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(home)) process.kill(pid, 'SIGKILL');
    } catch {
      // not running
    }
  }
  rmSync(home, { recursive: true, force: true });
}
