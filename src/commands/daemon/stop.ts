import { SpinCommand } from '../../cli/spin-command.js';
import { spinHome } from '../../core/spin-home.js';
import { stopDaemon } from '../../daemon/daemon-launcher.js';

/** `spin daemon stop`: a graceful stop. */
export default class DaemonStop extends SpinCommand {
  static override description =
    'Stop the broker daemon gracefully: it stops accepting, gives back the leases of connected agents, and closes the store. Exits 4 if no daemon runs.';
  static override examples = ['<%= config.bin %> daemon stop'];

  async run(): Promise<void> {
    await this.parse(DaemonStop);
    const pid = await stopDaemon(spinHome());
    this.log(`spin daemon stopped (pid ${String(pid)})`);
  }
}
