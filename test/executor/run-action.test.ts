import { spawn } from 'node:child_process';
import { existsSync, watch } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { agentRoots } from '../../src/agents/agent-roots.js';
import { attemptEnvironment, endEarlierAttempts } from '../../src/agents/attempt-record.js';
import { shellAgent } from '../../src/agents/shell/shell-agent.js';
import type { Lease } from '../../src/broker/broker-types.js';
import type { CommandSpec } from '../../src/core/package.js';
import { runAction } from '../../src/executor/run-action.js';
import { requireBuild } from '../support/cli-process.js';
import { fileAppears } from '../support/file-appears.js';
import { makeTempHome } from '../support/temp-home.js';
import { alive } from '../support/process-alive.js';

const fake = fileURLToPath(new URL('../fixtures/fake-program.js', import.meta.url));
const attemptAgent = fileURLToPath(new URL('../fixtures/attempt-agent.js', import.meta.url));
const node = process.execPath;
const agent = shellAgent({ allowShell: true, killAfterMs: 300 });

/** A temp SPIN_HOME for this test, removed when it finishes. */
async function home(): Promise<string> {
  const t = await makeTempHome('spin-run-action-');
  onTestFinished(() => t.cleanup());
  return t.home;
}

/** A lease of a shell command as the broker hands it out, its deadline with the broker's grace. */
function lease(argv: string[], extra: Partial<Lease> & { timeoutMs?: number } = {}): Lease {
  const { timeoutMs = 60_000, ...rest } = extra;
  const spec: CommandSpec = {
    id: 'nap',
    resource: 'shell',
    action: 'run',
    params: { argv },
    needs: [],
    node: 'local',
    timeoutMs,
    retries: 0,
  };
  const now = Date.now();
  return {
    packageId: 'p1',
    commandId: 'nap',
    attemptId: 'a1',
    spec,
    attempt: 1,
    leaseExpiresAt: now + 30_000,
    deadlineAt: now + timeoutMs + 5_000,
    ...rest,
  };
}

function run(dir: string, l: Lease): ReturnType<typeof runAction> {
  return runAction({
    agent,
    lease: l,
    roots: agentRoots(dir),
    signal: new AbortController().signal,
  });
}

/** A shell line that writes `$value` to `file` whole (by rename), for fileAppears. */
const writeWhole = (value: string, file: string): string =>
  `echo ${value} > ${file}.tmp && mv ${file}.tmp ${file}`;

/** The records of running attempts now in the home. */
async function records(dir: string): Promise<string[]> {
  return readdir(join(dir, 'run', 'attempts')).catch(() => []);
}

describe('runAction bounds a command by its own timeout', () => {
  it('fails a 1s command running `sleep 4` with timeout and ends it before its natural end', async () => {
    const dir = await home();
    const pidFile = join(dir, 'sh.pid');
    const marker = join(dir, 'marker');
    // Killed at 1s, it never writes the marker; had the broker's 5s grace been its deadline,
    // it would have written it at 4s.
    const script = `${writeWhole('$$', pidFile)}; sleep 4; touch ${marker}`;
    const result = await run(dir, lease(['sh', '-c', script], { timeoutMs: 1000 }));
    expect(result.ok).toBe(false);
    expect(result.error?.code).toBe('timeout');
    expect(result.retryable).toBe(true);
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(alive(pid)).toBe(false);
    // The whole group is gone: the marker is absent now and nothing is left that could write it.
    expect(existsSync(marker)).toBe(false);
    expect(await records(dir)).toEqual([]);
  });

  it('kills a grandchild that ignores SIGTERM and holds stdout open, and returns', async () => {
    const dir = await home();
    const gcFile = join(dir, 'grandchild.pid');
    const script = `trap '' TERM; sleep 300 & ${writeWhole('$!', gcFile)}; wait`;
    const result = await run(dir, lease(['sh', '-c', script], { timeoutMs: 1000 }));
    expect(result.error?.code).toBe('timeout');
    const grandchild = Number(await readFile(gcFile, 'utf8'));
    expect(grandchild).toBeGreaterThan(1);
    expect(alive(grandchild)).toBe(false);
  });

  it('ends what a program left running in its group when it exits', async () => {
    const dir = await home();
    const gcFile = join(dir, 'grandchild.pid');
    const script = `sleep 300 & ${writeWhole('$!', gcFile)}; echo done`;
    const result = await run(dir, lease(['sh', '-c', script]));
    expect(result).toEqual({ ok: true, output: { text: 'done\n' } });
    expect(alive(Number(await readFile(gcFile, 'utf8')))).toBe(false);
    expect(await records(dir)).toEqual([]);
  });
});

/** Resolves once `dir` holds a `.json` entry, woken by the directory changing. */
function recordAppears(dir: string, gaveUp: Promise<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      watcher.close();
      if (error === undefined) resolve();
      else reject(error);
    };
    const look = (): void => {
      readdir(dir).then((names) => {
        if (names.some((n) => n.endsWith('.json'))) finish();
      }, finish);
    };
    const watcher = watch(dir, look);
    look();
    void gaveUp.then(() => {
      finish(new Error('the agent ended before it recorded its attempt'));
    });
  });
}

describe('a redelivered attempt', () => {
  it('first ends the process group an earlier, killed attempt of the command left running', async () => {
    requireBuild();
    const dir = await home();
    const attempts = join(dir, 'run', 'attempts');
    await mkdir(attempts, { recursive: true });
    const ready = join(dir, 'old.pid');
    const first = lease([node, fake, '--ignore-term', `--ready-file=${ready}`, '--sleep=600000']);
    const agentProcess = spawn(node, [attemptAgent, dir, JSON.stringify(first)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const ended = new Promise((resolve) => agentProcess.once('exit', resolve));
    onTestFinished(() => {
      agentProcess.kill('SIGKILL');
    });
    const old = Number(await fileAppears(ready, ended));
    onTestFinished(() => {
      try {
        process.kill(-old, 'SIGKILL'); // whatever the test left, should it fail
      } catch {
        // gone, as it should be
      }
    });
    await recordAppears(attempts, ended);
    agentProcess.kill('SIGKILL');
    await ended;
    expect(alive(old)).toBe(true); // what a killed agent leaves: its child runs on

    // The next attempt's program looks for the old one as its first act.
    const check =
      "const s = (() => { try { return require('fs').readFileSync('/proc/' + process.argv[1] + '/stat', 'utf8'); } catch { return ''; } })();" +
      "const state = s.slice(s.lastIndexOf(')') + 2)[0];" +
      "console.log(s !== '' && state !== 'Z' && state !== 'X' ? 'old alive' : 'old gone');";
    const next = { ...lease([node, '-e', check, String(old)]), attemptId: 'a2', attempt: 2 };
    const result = await run(dir, next);
    expect(result).toEqual({ ok: true, output: { text: 'old gone\n' } });
    expect(alive(old)).toBe(false);
    expect(await records(dir)).toEqual([]);
  });

  it('leaves the groups of other commands alone', async () => {
    const dir = await home();
    const ready = join(dir, 'other.pid');
    const controller = new AbortController();
    const other = runAction({
      agent,
      lease: { ...lease([node, fake, `--ready-file=${ready}`, '--sleep=600000']), commandId: 'x' },
      roots: agentRoots(dir),
      signal: controller.signal,
    });
    const pid = Number(await fileAppears(ready, other));
    expect(await records(dir)).toHaveLength(1);
    const result = await run(dir, lease([node, fake, '--print=mine']));
    expect(result).toEqual({ ok: true, output: { text: 'mine\n' } });
    expect(alive(pid)).toBe(true);
    controller.abort();
    expect((await other).error?.code).toBe('cancelled');
    expect(alive(pid)).toBe(false);
    expect(await records(dir)).toEqual([]);
  });
});

describe('a program its agent never recorded', () => {
  it('is found by the mark in its environment and ended before the next attempt', async () => {
    const dir = await home();
    const attempt = { packageId: 'p-unrecorded', commandId: 'c1', attemptId: 'a1' };
    // As if the agent was killed right after the spawn, before it wrote the record.
    const ready = join(dir, 'ready');
    const orphan = spawn(node, [fake, `--ready-file=${ready}`, '--ignore-term', '--sleep=60000'], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, ...attemptEnvironment({ home: dir, attempt }) },
    });
    onTestFinished(() => {
      try {
        process.kill(-(orphan.pid ?? 0), 'SIGKILL');
      } catch {
        // ended by the test, as it should be
      }
    });
    const pid = Number(await fileAppears(ready));
    expect(existsSync(join(dir, 'run/attempts'))).toBe(false); // no record at all
    // Another home with a command of the same ids (tests side by side) leaves it alone.
    expect(await endEarlierAttempts(await home(), attempt, 300)).toBe(0);
    expect(alive(pid)).toBe(true);
    expect(await endEarlierAttempts(dir, attempt, 300)).toBe(1);
    expect(alive(pid)).toBe(false);
    // Another command's mark is left alone.
    expect(await endEarlierAttempts(dir, { ...attempt, commandId: 'c2' }, 300)).toBe(0);
  });
});
