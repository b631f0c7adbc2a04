import type { ChildProcess } from 'node:child_process';
import { afterEach } from 'vitest';
import { endProcess, killHard, startDaemonProcess } from './cli-process.js';
import { startNatsServer } from './nats-server.js';
import type { TestNatsServer } from './nats-server.js';
import { startSpin } from './spin-cli.js';
import type { RunningSpin } from './spin-cli.js';

/**
 * A fleet on this machine: nats-server on a port it picked, coordinators (`spin daemon run
 * --no-agents --nats`) and `spin agent --nats` processes with their own homes and node names,
 * all through the built binary.
 */
export interface TestFleet {
  nats: TestNatsServer;
  /**
   * Starts a coordinator on `home`, with `args` and `env` besides; resolves with its process
   * and its `listening` line (where it listens: socket, NATS, web view) once it listens.
   */
  coordinator(
    home: string,
    options?: { args?: string[]; env?: Record<string, string> },
  ): Promise<{ child: ChildProcess; listening: Record<string, unknown> }>;
  /** Starts `spin agent` for `node` on `home`; resolves once it consumes its queues. */
  agent(home: string, node: string, ...extra: string[]): Promise<RunningSpin>;
  /** Stops the coordinators gracefully (their audit logs flushed). */
  stopCoordinators(): Promise<void>;
}

/**
 * A way to start fleets in a test file that ends, after each test and whatever it did, every
 * agent, coordinator and nats-server the test started.
 */
export function fleetsEndingAfterEachTest(): (options?: { config?: string }) => Promise<TestFleet> {
  const servers: TestNatsServer[] = [];
  const coordinators: ChildProcess[] = [];
  const agents: RunningSpin[] = [];
  afterEach(async () => {
    for (const agent of agents.splice(0)) {
      try {
        process.kill(agent.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      await agent.done.catch(() => undefined);
    }
    await Promise.all(coordinators.splice(0).map((p) => killHard(p)));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });
  return async (options = {}) => {
    const nats = await startNatsServer(options);
    servers.push(nats);
    return {
      nats,
      coordinator: async (home, { args = [], env = {} } = {}) => {
        const started = await startDaemonProcess(
          home,
          ['--no-agents', '--nats', nats.url, ...args],
          env,
        );
        coordinators.push(started.child);
        return started;
      },
      agent: async (home, node, ...extra) => {
        const running = startSpin(
          ['agent', '--nats', nats.url, '--node', node, '--heartbeat', '200ms', ...extra],
          { env: { SPIN_HOME: home } },
        );
        agents.push(running);
        await running.waitFor(/consuming/);
        return running;
      },
      stopCoordinators: async () => {
        await Promise.all(coordinators.splice(0).map((child) => endProcess(child, 'SIGTERM')));
      },
    };
  };
}
