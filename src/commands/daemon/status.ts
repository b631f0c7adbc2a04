import { documentOutput, documentOutputFlags } from '../../cli/reconcile-flags.js';
import { SpinCommand } from '../../cli/spin-command.js';
import { spinHome } from '../../core/spin-home.js';
import { SpinError } from '../../core/errors.js';
import { lockHolder } from '../../broker/broker-lock.js';
import { brokerPaths } from '../../broker/broker-paths.js';
import { connectDaemon } from '../../daemon/open-broker.js';

/** `spin daemon status`: whether the daemon runs, and what it holds. */
export default class DaemonStatus extends SpinCommand {
  static override description =
    'Show whether the broker daemon runs (pid, socket, uptime) and its unfinished packages. Exits 0 when it runs, 4 when it does not answer.';
  static override examples = [
    '<%= config.bin %> daemon status',
    '<%= config.bin %> daemon status --json',
  ];
  static override flags = { ...documentOutputFlags(['text', 'json']) };

  async run(): Promise<void> {
    const { flags } = await this.parse(DaemonStatus);
    const home = spinHome();
    const client = await connectDaemon(home).catch((error: unknown) => {
      // No daemon, but maybe a `spin apply` running the broker embedded: say who owns the home.
      const holder = lockHolder(brokerPaths(home));
      if (holder?.role !== 'embedded') throw error;
      throw new SpinError(
        'unreachable',
        `no spin daemon runs for ${home}; pid ${String(holder.pid)} runs the broker embedded`,
        { details: { pid: holder.pid, role: holder.role } },
      );
    });
    try {
      const health = await client.health();
      const packages = (await client.listPackages(1000)).filter((p) => p.unfinished > 0);
      if (documentOutput(flags) === 'json') {
        this.printDocument('daemon-status', {
          running: true,
          ...health,
          unfinishedPackages: packages,
        });
        return;
      }
      const uptime = Math.round((Date.now() - health.startedAt) / 1000);
      this.log(
        `spin daemon running: pid ${String(health.pid)}, up ${String(uptime)}s, home ${health.home}`,
      );
      for (const p of packages)
        this.log(
          `  ${p.id} (${p.name}) ${p.state}: ${String(p.unfinished)}/${String(p.commands)} unfinished`,
        );
    } finally {
      await client.close();
    }
  }
}
