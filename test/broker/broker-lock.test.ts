import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lockHolder } from '../../src/broker/broker-lock.js';
import { brokerPaths } from '../../src/broker/broker-paths.js';
import { openOwnedBroker } from '../../src/broker/embedded-broker.js';
import { binPath, killHard, requireBuild, spin } from '../support/cli-process.js';
import { tempHome } from '../support/broker-helpers.js';

/** How a `spin daemon run` ended up: listening (still running), or exited with a code. */
interface Outcome {
  child: ChildProcess;
  listening: boolean;
  code: number | null;
  stderr: string;
}

/** Starts `spin daemon run` and resolves once it listens or exits, whichever comes first. */
function startRacer(home: string): Promise<Outcome> {
  const child = spawn(process.execPath, [binPath, 'daemon', 'run', '--no-agents'], {
    env: { ...process.env, SPIN_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve) => {
    let out = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('"type":"listening"'))
        resolve({ child, listening: true, code: null, stderr });
    });
    child.once('exit', (code) => {
      resolve({ child, listening: false, code, stderr });
    });
  });
}

describe('the broker lock of a home', () => {
  let home: ReturnType<typeof tempHome>;
  const children: ChildProcess[] = [];
  beforeAll(() => {
    requireBuild();
  });
  beforeEach(() => {
    home = tempHome();
  });
  afterEach(async () => {
    try {
      await Promise.all(children.splice(0).map(killHard));
    } finally {
      home.remove();
    }
  });

  it('lets exactly one of several daemons started at once own the home', async () => {
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => startRacer(home.dir)));
    children.push(...outcomes.map((o) => o.child));
    const winners = outcomes.filter((o) => o.listening);
    expect(winners).toHaveLength(1);
    const winner = winners[0]?.child.pid;
    for (const loser of outcomes.filter((o) => !o.listening)) {
      expect(loser.code).toBe(3);
      expect(loser.stderr).toContain('a broker already runs');
    }
    expect(readFileSync(brokerPaths(home.dir).pidFile, 'utf8')).toBe(`${String(winner)} daemon\n`);
    const stopped = await spin(home.dir, 'daemon', 'stop');
    expect(stopped.code).toBe(0);
  });

  it('trusts the kernel lock, not a pid file: one left by a killed broker names nobody', async () => {
    // The pid of a broker killed outright, since reused by an unrelated process: it answers a
    // ping with the signals it received.
    const bystander = spawn(
      process.execPath,
      [
        '-e',
        `const got = [];
         process.on('SIGTERM', () => got.push('SIGTERM'));
         process.on('message', () => process.send(got));`,
      ],
      { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] },
    );
    children.push(bystander);
    const signals = (): Promise<unknown> =>
      new Promise((resolve) => {
        bystander.once('message', resolve);
        bystander.send('ping');
      });
    expect(await signals()).toEqual([]);
    const paths = brokerPaths(home.dir);
    await (await openOwnedBroker({ home: home.dir, synchronous: 'normal' })).close();
    writeFileSync(paths.pidFile, `${String(bystander.pid)} daemon\n`);

    expect(lockHolder(paths)).toBeUndefined();
    const stop = await spin(home.dir, 'daemon', 'stop');
    expect(stop.code).not.toBe(0);
    expect(stop.stderr).toContain('no spin daemon runs');
    expect(await signals()).toEqual([]);

    const owner = await openOwnedBroker({ home: home.dir, synchronous: 'normal' });
    try {
      expect(lockHolder(paths)).toEqual({ pid: process.pid, role: 'embedded' });
      const status = await spin(home.dir, 'daemon', 'status');
      expect(status.code).toBe(4);
      expect(status.stderr).toContain(`pid ${String(process.pid)} runs the broker embedded`);
    } finally {
      await owner.close();
    }
    expect(lockHolder(paths)).toBeUndefined();
  });
});
