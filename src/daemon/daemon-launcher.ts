import { isRunning } from '../core/process-identity.js';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { SpinError } from '../core/errors.js';
import { brokerPaths } from '../broker/broker-paths.js';
import { lockHolder } from '../broker/broker-lock.js';
import { connectDaemon } from './open-broker.js';

/** How to start the daemon in the background. */
export interface LaunchOptions {
  home: string;
  /** The CLI entry to run as `node <entry> daemon run …` (bin/run.js). */
  entry: string;
  /** Extra arguments for `daemon run` (e.g. `--tcp-port 0`). */
  args?: string[];
  /** More environment for the daemon (secrets kept off its command line). */
  env?: Record<string, string>;
  /** How long to wait for the daemon to listen. */
  timeoutMs?: number;
}

/**
 * Starts `spin daemon run` detached, with its output appended to `$SPIN_HOME/spind.log`, and
 * resolves with its pid once it listens (it says so over an IPC channel, which is then closed).
 * A daemon that exits first — one already runs, exit 3 — is reported with its exit code.
 */
export function launchDaemon(
  options: LaunchOptions,
): Promise<{ pid: number; logFile: string; ui?: string }> {
  const paths = brokerPaths(options.home);
  mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  const holder = lockHolder(paths);
  if (holder !== undefined) {
    return Promise.reject(
      new SpinError(
        'daemon_running',
        `a broker already runs for ${paths.home}: pid ${String(holder.pid)} (${holder.role})`,
        {
          details: { pid: holder.pid },
        },
      ),
    );
  }
  const log = openSync(paths.logFile, 'a', 0o600);
  const child = spawn(process.execPath, [options.entry, 'daemon', 'run', ...(options.args ?? [])], {
    detached: true,
    stdio: ['ignore', log, log, 'ipc'],
    env: { ...process.env, ...options.env, SPIN_HOME: paths.home },
  });
  closeSync(log);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      finish();
      reject(new SpinError('unreachable', `the daemon did not start; see ${paths.logFile}`));
    }, options.timeoutMs ?? 15_000);
    const finish = (): void => {
      clearTimeout(timer);
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
    };
    child.on('message', (message: { type?: string; ui?: string }) => {
      if (message.type !== 'listening') return;
      finish();
      const ui = typeof message.ui === 'string' ? { ui: message.ui } : {};
      resolve({ pid: child.pid ?? 0, logFile: paths.logFile, ...ui });
    });
    child.on('exit', (code) => {
      finish();
      const held = code === 3;
      reject(
        new SpinError(
          held ? 'daemon_running' : 'internal',
          `the daemon exited with ${String(code)}; see ${paths.logFile}`,
        ),
      );
    });
    child.on('error', (error) => {
      finish();
      reject(error);
    });
  });
}

/**
 * Stops the daemon of `home` gracefully (asked over the API; SIGTERM when the API does not
 * answer) and resolves once its process is gone. `unreachable` when none runs.
 */
export async function stopDaemon(home: string, timeoutMs = 15_000): Promise<number> {
  const paths = brokerPaths(home);
  const holder = lockHolder(paths);
  if (holder?.role !== 'daemon') {
    throw new SpinError('unreachable', `no spin daemon runs for ${home}`);
  }
  try {
    const client = await connectDaemon(home);
    await client.shutdown();
    await client.close();
  } catch {
    process.kill(holder.pid, 'SIGTERM');
  }
  const started = Date.now();
  // The daemon is not our child, so there is no exit event to wait on: watch its pid.
  while (isRunning(holder.pid)) {
    if (Date.now() - started > timeoutMs) {
      throw new SpinError('timeout', `the daemon (pid ${String(holder.pid)}) did not stop in time`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return holder.pid;
}
