import { join } from 'node:path';
import { admissionArgs } from '../../cli/admission-flags.js';
import { daemonFlags } from '../../cli/daemon-flags.js';
import { natsArgs } from '../../cli/nats-flags.js';
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
    '<%= config.bin %> daemon start --no-agents --nats nats://127.0.0.1:4222 --nats-user coordinator --nats-password …',
  ];
  static override flags = daemonFlags;

  async run(): Promise<void> {
    const { flags } = await this.parse(DaemonStart);
    const nats = natsArgs(flags);
    const { pid, logFile, ui } = await launchDaemon({
      home: spinHome(),
      env: nats.env,
      entry: join(this.config.root, 'bin', 'run.js'),
      args: [
        ...(flags['tcp-port'] === undefined ? [] : ['--tcp-port', String(flags['tcp-port'])]),
        ...(flags.agents ? [] : ['--no-agents']),
        ...(flags['allow-shell'] ? ['--allow-shell'] : []),
        ...(flags.ui ? ['--ui'] : []),
        ...(flags['ui-port'] === undefined ? [] : ['--ui-port', String(flags['ui-port'])]),
        ...admissionArgs(flags),
        ...nats.args,
      ],
    });
    this.log(
      `spin daemon started: pid ${String(pid)}, log ${logFile}${ui === undefined ? '' : `, web view ${ui} (log in with \`spin ui\`)`}`,
    );
  }
}
