import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

/** The built CLI entry; tests run it as a user would (`npm run build` first). */
export const binPath = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

/** Fails with a clear message when the CLI has not been built. */
export function requireBuild(): void {
  const manifest = fileURLToPath(new URL('../../oclif.manifest.json', import.meta.url));
  const built = fileURLToPath(new URL('../../dist/commands/daemon/run.js', import.meta.url));
  if (!existsSync(manifest) || !existsSync(built)) {
    throw new Error('these tests run the built CLI: run `npm run build` first');
  }
}

/** Runs `spin <args>` with `SPIN_HOME=home`; never rejects on a non-zero exit. */
export async function spin(
  home: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await execa(process.execPath, [binPath, ...args], {
    env: { SPIN_HOME: home },
    reject: false,
    timeout: 30_000,
  });
  return { code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Starts `spin daemon run` and resolves once it logs that it listens: the broker only, unless
 * `agents` (the built-in agents would consume the storage and emulation queues).
 */
export async function runDaemonProcess(
  home: string,
  options: { agents?: boolean } = {},
): Promise<ChildProcess> {
  return (await startDaemonProcess(home, options.agents === true ? [] : ['--no-agents'])).child;
}

/**
 * Starts `spin daemon run` with `args` (and `env` besides `SPIN_HOME`) and resolves with the
 * process and its `listening` line (its socket, and where it also listens: TCP, NATS, the web
 * view); rejects, with what it said on stderr, if it exits first.
 */
export function startDaemonProcess(
  home: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; listening: Record<string, unknown> }> {
  const child = spawn(process.execPath, [binPath, 'daemon', 'run', ...args], {
    env: { ...process.env, ...env, SPIN_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const line = out.split('\n').find((l) => l.includes('"type":"listening"'));
      if (line !== undefined)
        resolve({ child, listening: JSON.parse(line) as Record<string, unknown> });
    });
    child.once('exit', (code) => {
      reject(new Error(`the daemon exited with ${String(code)}: ${out}${err}`));
    });
  });
}

/** Sends `signal` to a process (SIGKILL by default) and resolves once it is gone. */
export function endProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    child.once('exit', () => {
      resolve();
    });
    child.kill(signal);
  });
}

/** Kills a process with SIGKILL and resolves once it is gone. */
export function killHard(child: ChildProcess): Promise<void> {
  return endProcess(child, 'SIGKILL');
}
