import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { expect, it, onTestFinished } from 'vitest';
import {
  currentProcess,
  isGone,
  isRunning,
  processStartTime,
} from '../../src/core/process-identity.js';

/**
 * A zombie: a `sh` that starts a short child and then becomes `sleep`, which never reaps it.
 * Resolves with the zombie's pid once /proc shows it exited but unreaped.
 */
async function zombie(): Promise<number> {
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  onTestFinished(() => {
    parent.kill('SIGKILL');
  });
  const pid = await new Promise<number>((resolve) => {
    parent.stdout.once('data', (chunk: Buffer) => {
      resolve(Number(chunk.toString().trim()));
    });
  });
  // `sleep 0` ends at once; wait (by its own exit, not a timer) until it shows as a zombie.
  for (;;) {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return pid;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

it('counts this process as running and a zombie as gone, whatever its pid shows in /proc', async () => {
  expect(isRunning(process.pid)).toBe(true);
  expect(isGone(currentProcess())).toBe(false);
  const dead = await zombie();
  const stat = readFileSync(`/proc/${String(dead)}/stat`, 'utf8');
  const startTime = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  expect(isRunning(dead)).toBe(false);
  expect(processStartTime(dead)).toBeUndefined();
  // Its identity as recorded while it ran, start time and all: it is gone all the same.
  expect(isGone({ pid: dead, host: hostname(), startTime })).toBe(true);
});

it('tells this process from a later one with its pid, and never judges another host', () => {
  const me = currentProcess();
  expect(isGone({ ...me, startTime: me.startTime + 1 })).toBe(true);
  expect(isGone({ ...me, host: `not-${hostname()}`, startTime: 0 })).toBe(false);
});
