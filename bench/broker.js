// Broker benchmark: no-op commands end to end (enqueue → lease → ack, durable acks) through the
// embedded broker and through the daemon's socket, with 1 and 4 queues; beside them, from the
// same run, the disk's fsync rate (the bound for one durable ack at a time) and p-queue in memory
// (the bound without any durability). Consumers work as `spin agent` does: each ack goes out
// with the request for the next lease (at most 32 acks outstanding); the "ack+next" rows instead
// wait for each ack to be durable, which brings the next lease.
// Each broker first runs an unmeasured round as large as a measured one (JIT warm-up), as a
// long-running daemon would be, then three measured rounds; a row shows their median.
// Run: npm run bench:broker [-- --commands 5000]
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import PQueue from 'p-queue';
import { brokerPaths } from '../dist/broker/broker-paths.js';
import { DaemonClient } from '../dist/daemon/daemon-client.js';
import { openOwnedBroker } from '../dist/broker/embedded-broker.js';
import { maxUnflushedAcks } from '../dist/executor/agent-runner.js';

const perQueue = Number(process.argv[process.argv.indexOf('--commands') + 1]) || 4000;
const root = mkdtempSync(join(process.env['BENCH_DIR'] ?? tmpdir(), 'spin-bench-broker-'));
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url));

function fsyncRate(dir, ms = 1500) {
  const fd = openSync(join(dir, 'fsync-probe'), 'w');
  const block = Buffer.alloc(512, 1);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    writeSync(fd, block, 0, block.length, 0);
    fsyncSync(fd);
    n++;
  }
  closeSync(fd);
  return (n / (performance.now() - start)) * 1000;
}

async function pQueueRate(queues) {
  const lanes = Array.from({ length: queues }, () => new PQueue({ concurrency: 1 }));
  const start = performance.now();
  await Promise.all(
    lanes.map((lane) => {
      for (let i = 0; i < perQueue; i++) void lane.add(async () => {});
      return lane.onIdle();
    }),
  );
  return ((perQueue * queues) / (performance.now() - start)) * 1000;
}

/**
 * Round trips of a 300-byte line between this process and an echo server in another, over a unix
 * socket: one queue over the daemon's socket takes at least one per command, so this is its bound.
 */
async function socketRoundTrips(ms = 1500) {
  const path = join(root, 'echo.sock');
  const echo = `require('node:net').createServer((s) => s.pipe(s)).listen(${JSON.stringify(path)}, () => console.log('up'))`;
  const child = spawn(process.execPath, ['-e', echo], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  const socket = connect(path);
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once('connect', resolve));
  const line = `${'x'.repeat(299)}\n`;
  let n = 0;
  const start = performance.now();
  await new Promise((resolve) => {
    socket.on('data', () => {
      n++;
      if (performance.now() - start < ms) socket.write(line);
      else resolve();
    });
    socket.write(line);
  });
  const rate = (n / (performance.now() - start)) * 1000;
  socket.destroy();
  child.kill();
  return rate;
}

/** Drains a queue as the agent runner does: ack, and lease the next at once; 32 acks in flight. */
async function pipelined(consumer, count) {
  let done = 0;
  const acks = [];
  let lease = await consumer.lease({ waitMs: 1000 });
  while (lease) {
    acks.push(consumer.ack(lease, { ok: true }));
    if (acks.length > maxUnflushedAcks) await acks.shift();
    done++;
    lease = done < count ? await consumer.lease({ waitMs: 1000 }) : undefined;
  }
  await Promise.all(acks);
  return done;
}

/** Drains a queue with one round trip per command: the ack, durable, brings the next lease. */
async function ackThenNext(consumer) {
  let done = 0;
  let lease = await consumer.lease({ waitMs: 1000 });
  while (lease) {
    lease = (await consumer.ack(lease, { ok: true }, { next: true })).next;
    done++;
  }
  return done;
}

/** Submits perQueue commands on each of `queues` queues, then drains them with one consumer each. */
async function brokerRate(broker, queues, commitStats, drain = pipelined, count = perQueue) {
  const resources = Array.from({ length: queues }, (_, i) => `bench${i}`);
  const commands = [];
  for (let i = 0; i < count; i++) {
    for (const resource of resources) {
      commands.push({
        resource,
        action: 'noop',
        params: {},
        needs: [],
        node: 'local',
        timeoutMs: 60_000,
        retries: 0,
      });
    }
  }
  const consumers = await Promise.all(
    resources.map((resource) => broker.consumer({ node: 'local', resource })),
  );
  const start = performance.now();
  const before = await commitStats();
  const pkg = await broker.createPackage({ name: 'bench' });
  for (let i = 0; i < commands.length; i += 5_000)
    await broker.addCommands(pkg, commands.slice(i, i + 5_000));
  await broker.enqueue(pkg);
  await Promise.all(
    consumers.map(async (consumer) => {
      const done = await drain(consumer, count);
      if (done !== count) throw new Error(`a consumer got ${done} of ${count} commands`);
    }),
  );
  const ms = performance.now() - start;
  const rate = (commands.length / ms) * 1000;
  const after = await commitStats();
  await Promise.all(consumers.map((c) => c.close()));
  const perCommit = (after.operations - before.operations) / (after.commits - before.commits);
  return {
    rate,
    ms,
    commands: commands.length,
    note: `${perCommit.toFixed(1)} operations per commit`,
  };
}

/** Commands per queue of the unmeasured round each broker runs first, so the JIT has compiled it. */
const warmUp = perQueue;
/** Measured rounds per row; the row shows their median. */
const rounds = 3;

/** The round of median rate, its note saying the spread of all. */
function median(results) {
  const sorted = [...results].sort((a, b) => a.rate - b.rate);
  const middle = sorted[Math.floor(sorted.length / 2)];
  const spread = `${fmtShort(sorted[0].rate)}–${fmtShort(sorted.at(-1).rate)}`;
  return { ...middle, note: `${middle.note}; rounds ${spread}` };
}

/** Each measured round runs on a broker opened afresh on the same store, as a restart would. */
async function embedded(queues, drain) {
  const home = join(root, `embedded-${queues}-${drain?.name ?? 'pipelined'}`);
  const results = [];
  for (let round = 0; round <= rounds; round++) {
    const broker = await openOwnedBroker({ home, sweepIntervalMs: 0 });
    try {
      const stats = () => broker.store.stats();
      const result = await brokerRate(
        broker,
        queues,
        stats,
        drain,
        round === 0 ? warmUp : perQueue,
      );
      if (round > 0) results.push(result);
    } finally {
      await broker.close();
    }
  }
  return median(results);
}

async function overSocket(queues) {
  const home = join(root, `daemon-${queues}`);
  const child = spawn(process.execPath, [bin, 'daemon', 'run', '--no-agents'], {
    env: { ...process.env, SPIN_HOME: home },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('"listening"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`daemon exited ${code}`)));
  });
  const client = await DaemonClient.connect({ socketPath: brokerPaths(home).socket });
  try {
    const stats = async () => (await client.health()).commits;
    await brokerRate(client, queues, stats, pipelined, warmUp);
    const results = [];
    for (let round = 0; round < rounds; round++)
      results.push(await brokerRate(client, queues, stats));
    return median(results);
  } finally {
    await client.shutdown();
    await client.close();
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

const fmtShort = (n) => Math.round(n).toLocaleString('en-US');
const fmt = (n) => fmtShort(n).padStart(9);
const fsyncBefore = fsyncRate(root);
const rows = [
  ['p-queue in memory, 1 queue', { rate: await pQueueRate(1) }],
  ['p-queue in memory, 4 queues', { rate: await pQueueRate(4) }],
  ['embedded broker, 1 queue', await embedded(1)],
  ['embedded broker, 4 queues', await embedded(4)],
  ['embedded broker, 1 queue, ack+next', await embedded(1, ackThenNext)],
  ['embedded broker, 4 queues, ack+next', await embedded(4, ackThenNext)],
  ['unix socket round trips between two processes', { rate: await socketRoundTrips() }],
  ['daemon socket, 1 queue', await overSocket(1)],
  ['daemon socket, 4 queues', await overSocket(4)],
];
// The disk is shared: measure fsync before and after, and compare with the mean of the two.
const fsyncAfter = fsyncRate(root);
const fsync = (fsyncBefore + fsyncAfter) / 2;
rows.unshift([
  `fsync loop, before / after: ${Math.round(fsyncBefore)} / ${Math.round(fsyncAfter)}`,
  { rate: fsync },
]);
console.log(
  `spin broker benchmark: ${perQueue} no-op commands per queue, every ack flushed to disk before it is answered`,
);
console.log(`${'what'.padEnd(44)} ${'per second'.padStart(10)}  vs fsync`);
for (const [name, { rate, note }] of rows) {
  const ratio = `${(rate / fsync).toFixed(2)}x`.padStart(7);
  console.log(`${name.padEnd(44)} ${fmt(rate)}  ${ratio}  ${note ?? ''}`);
}
rmSync(root, { recursive: true, force: true });
