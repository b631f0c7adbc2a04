import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import {
  findQemu,
  pause,
  stillRuns,
  waitForExit,
  type QemuProcess,
} from '../../src/agents/emulation/vm-process.js';
import { processStartTime } from '../../src/core/process-identity.js';
import { alive } from '../support/process-alive.js';
import { testDir } from '../support/spin-cli.js';

/** A `sleep` child standing for a qemu, with its identity; killed when the test ends. */
function sleeper(): { child: ReturnType<typeof spawn>; process: QemuProcess } {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const pid = child.pid ?? 0;
  return { child, process: { pid, startTime: processStartTime(pid) ?? -1 } };
}

it('waits for a process to exit, and tells when it did not in time', async () => {
  const { child, process } = sleeper();
  const signal = new AbortController().signal;
  expect(await waitForExit(process, 50, signal)).toBe(false);
  const exited = waitForExit(process, 600_000, signal);
  child.kill('SIGTERM');
  expect(await exited).toBe(true);
  expect(alive(process.pid)).toBe(false);
});

it('takes a process of the same pid but another start time for gone', async () => {
  const { process } = sleeper();
  const other = { pid: process.pid, startTime: process.startTime + 1 };
  expect(stillRuns(process)).toBe(true);
  expect(stillRuns(other)).toBe(false);
  expect(await waitForExit(other, 600_000, new AbortController().signal)).toBe(true);
  expect(alive(process.pid)).toBe(true);
});

it('stops waiting when aborted, with the reason', async () => {
  const { process } = sleeper();
  const controller = new AbortController();
  const waiting = waitForExit(process, 600_000, controller.signal);
  controller.abort();
  const error = (await waiting.catch((e: unknown) => e)) as { code?: string };
  expect(error.code).toBe('cancelled');
});

it('pauses until woken, and says so', async () => {
  const signal = new AbortController().signal;
  expect(await pause(600_000, signal, Promise.resolve())).toBe(true);
  expect(await pause(1, signal)).toBe(false);
});

it('finds no qemu in a pid file naming a process that is not that qemu', async () => {
  const dir = await testDir('spin-vm-process-');
  const pidFile = join(dir, 'qemu.pid');
  const { process } = sleeper();
  await writeFile(pidFile, `${String(process.pid)}\n`);
  expect(findQemu(pidFile)).toBeUndefined();
  await writeFile(pidFile, 'garbage\n');
  expect(findQemu(pidFile)).toBeUndefined();
  expect(findQemu(join(dir, 'none.pid'))).toBeUndefined();
});
