import * as Flags from '@oclif/core/flags';
import { SpinCommand } from '../cli/spin-command.js';
import { spinHome } from '../core/spin-home.js';
import { openInBrowser, webLoginUrl } from '../web/web-login.js';

/** `spin ui`: a one-time login address of the daemon's web view, opened in a browser. */
export default class Ui extends SpinCommand {
  static override description =
    "Print a one-time login address of the daemon's web view (started with `spin daemon start --ui`) and open it in a browser where there is one. The address works once, within a minute; the browser then holds a session cookie. Exits 4 when no daemon with a web view runs.";
  static override examples = ['<%= config.bin %> ui', '<%= config.bin %> ui --no-open'];
  static override flags = {
    open: Flags.boolean({
      description: 'open the address with xdg-open (when there is a display)',
      default: true,
      allowNo: true,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Ui);
    const url = await webLoginUrl(spinHome());
    this.log(url);
    if (flags.open && openInBrowser(url)) this.log('opened in the browser');
  }
}
