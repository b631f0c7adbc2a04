import { Flags } from '@oclif/core';
import { SpinCommand } from '../../cli/spin-command.js';
import { spinHome } from '../../core/spin-home.js';
import { startDaemon } from '../../daemon/daemon-runner.js';
import type { DaemonLogEntry } from '../../daemon/daemon-runner.js';
import { AgentHost } from '../../reconcile/agent-host.js';

/** `spin daemon run`: the daemon in the foreground, for systemd and containers. */
export default class DaemonRun extends SpinCommand {
  static override description =
    'Run the broker daemon in the foreground (for systemd: see examples/spind.service). It serves $SPIN_HOME/spind.sock, logs one JSON object a line, and stops gracefully on SIGTERM or SIGINT. A second daemon for the same SPIN_HOME exits 3.';
  static override examples = [
    '<%= config.bin %> daemon run',
    '<%= config.bin %> daemon run --tcp-port 7420   # also loopback TCP, token in $SPIN_HOME/spind.token',
  ];
  static override flags = {
    'tcp-port': Flags.integer({
      description: 'also listen on 127.0.0.1:<port> (bearer token required)',
      min: 0,
      max: 65_535,
    }),
    agents: Flags.boolean({
      description:
        'run the built-in agents (storage, emulation, shell) in the daemon; --no-agents leaves the queues to `spin agent` processes',
      default: true,
      allowNo: true,
    }),
    'allow-shell': Flags.boolean({ description: 'let the shell agent run commands' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(DaemonRun);
    const log = (entry: DaemonLogEntry): void => {
      this.log(JSON.stringify({ at: new Date().toISOString(), ...entry }));
      if (entry.type === 'listening') process.send?.(entry);
    };
    const home = spinHome();
    const daemon = await startDaemon({
      home,
      ...(flags.agents
        ? {
            host: (broker) =>
              new AgentHost(home, { allowShell: flags['allow-shell'] }).serve(broker),
          }
        : {}),
      version: this.config.version,
      log,
      ...(flags['tcp-port'] === undefined
        ? {}
        : { tcp: { host: '127.0.0.1', port: flags['tcp-port'] } }),
    });
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => void daemon.stop(signal));
    }
    await daemon.stopped;
  }
}
