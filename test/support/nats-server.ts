import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's nats-server, as `.ci/run` installs it. */
export const natsServerPath = '/usr/sbin/nats-server';

/** A nats-server of a test: its URL, a hard kill, a restart on the same port, and its end. */
export interface TestNatsServer {
  url: string;
  port: number;
  /** SIGKILL, resolved once it is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port (retried while the port is still held). */
  restart(): Promise<void>;
  /** Ends it and removes its directory. */
  stop(): Promise<void>;
}

/**
 * Starts nats-server on 127.0.0.1 on a port it picks itself (`-p -1`, read from its log), with
 * JetStream off and its own temp directory, optionally with a config file (users, permissions).
 */
export async function startNatsServer(options: { config?: string } = {}): Promise<TestNatsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'spin-nats-'));
  let child: ChildProcess;
  const launch = (port: number): Promise<number> => {
    const args = ['-a', '127.0.0.1', '-p', String(port), '-P', join(dir, 'nats.pid')];
    if (options.config !== undefined) args.push('-c', options.config);
    child = spawn(natsServerPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    return new Promise((resolve, reject) => {
      let log = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        const match = /Listening for client connections on [^:]+:(\d+)/.exec(log);
        if (match?.[1] !== undefined) resolve(Number(match[1]));
      });
      child.once('exit', (code) => {
        reject(new Error(`nats-server exited with ${String(code)}: ${log}`));
      });
    });
  };
  const port = await launch(-1);
  const gone = (): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve();
        return;
      }
      child.once('exit', () => {
        resolve();
      });
      child.kill('SIGKILL');
    });
  return {
    url: `nats://127.0.0.1:${String(port)}`,
    port,
    kill: gone,
    restart: async () => {
      for (let tries = 0; ; tries++) {
        try {
          await launch(port);
          return;
        } catch (error) {
          if (tries > 50) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    },
    stop: async () => {
      await gone();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
