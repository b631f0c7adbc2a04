import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Flags } from '@oclif/core';
import { SpinCommand } from '../../cli/spin-command.js';
import { spinHome } from '../../core/spin-home.js';
import { launchDaemon } from '../../daemon/daemon-launcher.js';

/** `spin daemon start`: the daemon in the background. */
export default class DaemonStart extends SpinCommand {
  static override description =
    'Start the broker daemon in the background; its pid file and log are under $SPIN_HOME (spind.pid, spind.log). Exits 3 if a daemon already runs.';
  static override examples = [
    '<%= config.bin %> daemon start',
    'SPIN_HOME=/tmp/spin <%= config.bin %> daemon start',
  ];
  static override flags = {
    'tcp-port': Flags.integer({
      description: 'also listen on 127.0.0.1:<port> (bearer token required)',
      min: 0,
      max: 65_535,
    }),
    agents: Flags.boolean({
      description:
        'run the built-in agents in the daemon; --no-agents leaves the queues to `spin agent` processes',
      default: true,
      allowNo: true,
    }),
    'allow-shell': Flags.boolean({ description: 'let the shell agent run commands' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(DaemonStart);
    const entry = join(fileURLToPath(new URL('../../../bin/run.js', import.meta.url)));
    const { pid, logFile } = await launchDaemon({
      home: spinHome(),
      entry,
      args: [
        ...(flags['tcp-port'] === undefined ? [] : ['--tcp-port', String(flags['tcp-port'])]),
        ...(flags.agents ? [] : ['--no-agents']),
        ...(flags['allow-shell'] ? ['--allow-shell'] : []),
      ],
    });
    this.log(`spin daemon started: pid ${String(pid)}, log ${logFile}`);
  }
}
