import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

/** The repository root, where `bin/run.js` lives. */
export const repoRoot = new URL('../..', import.meta.url).pathname;

/** What a run of the CLI left behind, as a user would see it. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built `spin` binary as a user would (`node bin/run.js ...`), from the repo root, with
 * its own SPIN_HOME unless one is given, and no terminal.
 */
export function spin(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; input?: string } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/run.js'), ...args], {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A fresh temporary directory; the caller removes it (see `testDir` for one that goes by itself). */
export function tempDir(prefix = 'spin-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * A fresh temporary directory for the running test, removed when the test finishes, passed or
 * failed (after its `afterEach` hooks and after cleanups registered later, which end first).
 */
export async function testDir(prefix = 'spin-test-'): Promise<string> {
  const dir = await tempDir(prefix);
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A CLI run still going: its output so far, a way to wait for a line, and its end. */
export interface RunningSpin {
  pid: number;
  output(): string;
  /** Resolves when a line of stdout or stderr matches; rejects if the process ends first. */
  waitFor(pattern: RegExp): Promise<string>;
  /** Resolves when stdout and stderr so far satisfy `test`; rejects if the process ends first. */
  waitForOutput(test: (output: string) => boolean, what: string): Promise<void>;
  signal(name: NodeJS.Signals): void;
  done: Promise<CliRun>;
}

/** Starts the CLI and returns at once, for tests that act while it runs (Ctrl-C, locks). */
export function startSpin(
  args: string[],
  options: { env?: Record<string, string> } = {},
): RunningSpin {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/run.js'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: {
    what: string;
    match: (output: string) => string | undefined;
    resolve: (line: string) => void;
    reject: (e: Error) => void;
  }[] = [];
  const check = (): void => {
    const output = `${stdout}\n${stderr}`;
    for (const waiter of [...waiters]) {
      const found = waiter.match(output);
      if (found !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(found);
      }
    }
  };
  const wait = (what: string, match: (output: string) => string | undefined): Promise<string> =>
    new Promise((resolve, reject) => {
      waiters.push({ what, match, resolve, reject });
      check();
    });
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    check();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    check();
  });
  const done = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      for (const waiter of waiters.splice(0)) {
        waiter.reject(
          new Error(
            `spin ${args.join(' ')} ended (${String(code)}) before ${waiter.what}:\n${stdout}\n${stderr}`,
          ),
        );
      }
      resolve({ code, stdout, stderr });
    });
  });
  return {
    pid: child.pid ?? 0,
    output: () => stdout + stderr,
    waitFor: (pattern) =>
      wait(String(pattern), (output) => output.split('\n').find((l) => pattern.test(l))),
    waitForOutput: async (test, what) => {
      await wait(what, (output) => (test(output) ? '' : undefined));
    },
    signal: (name) => child.kill(name),
    done,
  };
}
