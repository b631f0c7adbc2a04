// npm run bench:fleet — one coordinator, AGENTS agent processes with distinct node names on this
// machine, COMMANDS light commands (storage add_volume: one mkdir) spread over them round-robin.
// The same work goes through the daemon's unix socket (each agent a `spin agent storage --node`
// process) and through NATS (`spin agent --nats --node`), in the same run, alternating rounds;
// rows are medians. Reported: commands/s, p50/p99 from a queue's command settling to the lease of
// its next one (every command is ready from the start; from the coordinator's events), the CPU
// each party (coordinator, nats-server, all agents) spent per command, and the coordinator's CPU
// per heartbeat per node, measured over an idle window with every agent sending a heartbeat each
// HEARTBEAT_MS, minus the same window with no agents.
//
// AGENTS=100 COMMANDS=10000 ROUNDS=1 node bench/fleet.js   (the size; defaults are smaller)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'run.js');
const agents = Number(process.env.AGENTS ?? 20);
const commands = Number(process.env.COMMANDS ?? 2000);
const rounds = Number(process.env.ROUNDS ?? 2);
const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 1000);
const idleMs = Number(process.env.IDLE_MS ?? 10_000);

const { DaemonClient } = await import(join(root, 'dist/daemon/daemon-client.js'));

const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function start(args, env, waitFor) {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let out = '';
    const look = (chunk) => {
      out += chunk.toString();
      if (waitFor.test(out)) resolve(child);
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.once('exit', (code) =>
      reject(new Error(`spin ${args.join(' ')} exited ${code}: ${out}`)),
    );
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function natsServer() {
  const child = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', '-1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  const port = await new Promise((resolve, reject) => {
    let log = '';
    child.stderr.on('data', (c) => {
      log += c.toString();
      const m = /client connections on [^:]+:(\d+)/.exec(log);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', () => reject(new Error(log)));
  });
  return { child, url: `nats://127.0.0.1:${port}` };
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuOf(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function round(transport, nats) {
  const dir = mkdtempSync(join(tmpdir(), `spin-bench-fleet-${transport}-`));
  const coordHome = join(dir, 'coord');
  const natsArgs = transport === 'nats' ? ['--nats', nats.url] : [];
  const coordinator = await start(
    ['daemon', 'run', '--no-agents', ...natsArgs],
    { SPIN_HOME: coordHome },
    /"type":"listening"/,
  );
  const client = await DaemonClient.connect({ socketPath: join(coordHome, 'spind.sock') });
  let idleCpuPerBeatUs;
  let baseline = 0;
  if (transport === 'nats') {
    const before = cpuOf(coordinator.pid);
    await new Promise((r) => setTimeout(r, idleMs));
    baseline = cpuOf(coordinator.pid) - before;
  }
  const nodes = Array.from({ length: agents }, (_, i) => `n${i}`);
  const running = [];
  for (let i = 0; i < nodes.length; i += 10) {
    running.push(
      ...(await Promise.all(
        nodes.slice(i, i + 10).map((node) =>
          start(
            transport === 'nats'
              ? [
                  'agent',
                  '--nats',
                  nats.url,
                  '--node',
                  node,
                  '--resources',
                  'storage',
                  '--heartbeat',
                  `${heartbeatMs}ms`,
                ]
              : ['agent', 'storage', '--node', node],
            // Over the socket, agents reach the daemon of their home: the coordinator's.
            { SPIN_HOME: transport === 'nats' ? join(dir, node) : coordHome },
            /consuming/,
          ),
        ),
      )),
    );
  }
  if (transport === 'nats') {
    // Let every node's first heartbeat in, then measure an idle window.
    await new Promise((r) => setTimeout(r, heartbeatMs * 2));
    const before = cpuOf(coordinator.pid);
    await new Promise((r) => setTimeout(r, idleMs));
    const used = cpuOf(coordinator.pid) - before - baseline;
    const beats = (agents * idleMs) / heartbeatMs;
    idleCpuPerBeatUs = (Math.max(0, used) / beats) * 1e6;
  }
  // When each node's queue was last freed (its command settled): the next lease's latency is
  // measured from there, since every command is ready from the start and waits its turn.
  const freed = new Map();
  const latencies = [];
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const unsubscribe = await client.subscribe((event) => {
    if (event.type === 'command' && event.to === 'running' && freed.has(event.node)) {
      latencies.push(event.at - freed.get(event.node));
    }
    if (event.type === 'command' && event.to === 'succeeded') freed.set(event.node, event.at);
    if (event.type === 'package' && ['succeeded', 'failed'].includes(event.to)) done(event.to);
  });
  const packageId = await client.createPackage({ name: 'bench-fleet' });
  const specs = Array.from({ length: commands }, (_, i) => ({
    id: `c${i}`,
    resource: 'storage',
    action: 'add_volume',
    params: { path: `v${i}` },
    needs: [],
    node: nodes[i % nodes.length],
    timeoutMs: 60_000,
    retries: 0,
  }));
  for (let i = 0; i < specs.length; i += 5000)
    await client.addCommands(packageId, specs.slice(i, i + 5000));
  // CPU per command of each party: where the time of a transport goes.
  const cpuNow = () => ({
    coordinator: cpuOf(coordinator.pid),
    'nats-server': transport === 'nats' ? cpuOf(nats.child.pid) : 0,
    agents: running.reduce((n, child) => n + cpuOf(child.pid), 0),
  });
  const cpuBefore = cpuNow();
  const t0 = performance.now();
  await client.enqueue(packageId);
  const outcome = await finished;
  const seconds = (performance.now() - t0) / 1000;
  const cpuAfter = cpuNow();
  const cpuPerCommandMs = Object.fromEntries(
    Object.keys(cpuAfter).map((k) => [k, ((cpuAfter[k] - cpuBefore[k]) * 1000) / commands]),
  );
  unsubscribe();
  await client.close();
  await Promise.all(running.map(stop));
  await stop(coordinator);
  rmSync(dir, { recursive: true, force: true });
  if (outcome !== 'succeeded') throw new Error(`${transport}: the package ${outcome}`);
  latencies.sort((a, b) => a - b);
  return {
    perSecond: commands / seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    cpuPerBeatUs: idleCpuPerBeatUs,
    cpuPerCommandMs,
  };
}

const nats = await natsServer();
const results = { socket: [], nats: [] };
for (let r = 0; r < rounds; r++) {
  for (const transport of r % 2 === 0 ? ['socket', 'nats'] : ['nats', 'socket']) {
    const result = await round(transport, nats);
    results[transport].push(result);
    console.error(`round ${r + 1} ${transport}: ${JSON.stringify(result)}`);
  }
}
nats.child.kill('SIGKILL');
const row = (name) => {
  const rs = results[name];
  return {
    transport: name,
    'commands/s': median(rs.map((x) => x.perSecond)).toFixed(0),
    'ack→next lease p50 ms': String(median(rs.map((x) => x.p50))),
    'ack→next lease p99 ms': String(median(rs.map((x) => x.p99))),
    ...Object.fromEntries(
      Object.keys(rs[0].cpuPerCommandMs).map((k) => [
        `CPU ms/command: ${k}`,
        median(rs.map((x) => x.cpuPerCommandMs[k])).toFixed(2),
      ]),
    ),
  };
};
console.log(`${agents} agents, ${commands} commands, ${rounds} round(s) each, medians`);
console.table([row('socket'), row('nats')]);
const ratio =
  median(results.nats.map((x) => x.perSecond)) / median(results.socket.map((x) => x.perSecond));
console.log(`NATS / socket: ${ratio.toFixed(2)}x (goal ≥ 0.5x)`);
const perBeat = median(results.nats.map((x) => x.cpuPerBeatUs));
const share = (everyMs) => ((perBeat * 1000 * (1000 / everyMs)) / 1e6) * 100;
console.log(
  `coordinator CPU per idle node per heartbeat interval (its heartbeat and its waiting lease request): ${perBeat.toFixed(0)} µs; 1,000 nodes ≈ ${share(1000).toFixed(1)}% of one core at one heartbeat a second, ${share(5000).toFixed(1)}% at the default 5 s`,
);
