import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { brokerPaths } from '../broker/broker-paths.js';
import { SpinError } from '../core/errors.js';
import { daemonToken } from '../daemon/daemon-runner.js';
import { connectDaemon } from '../daemon/open-broker.js';

/**
 * A one-time login address of the web view of the daemon of `home`: asks the daemon where its
 * view listens (its health), then the view for a ticket, with the daemon's token as the CLI
 * holds it. `unreachable` (exit 4) when no daemon runs or it serves no web view.
 */
export async function webLoginUrl(home: string): Promise<string> {
  const client = await connectDaemon(home);
  let url: string | undefined;
  try {
    url = (await client.health()).ui?.url;
  } finally {
    await client.close();
  }
  if (url === undefined) {
    throw new SpinError('unreachable', `the daemon of ${home} serves no web view`, {
      suggestions: ['restart it with `spin daemon stop && spin daemon start --ui`'],
    });
  }
  let response: Response;
  try {
    response = await fetch(new URL('api/tickets', url), {
      method: 'POST',
      headers: { authorization: `Bearer ${daemonToken(brokerPaths(home))}` },
    });
  } catch (error) {
    throw new SpinError('unreachable', `the web view at ${url} does not answer`, { cause: error });
  }
  const body = (await response.json().catch(() => ({}))) as { url?: unknown };
  if (!response.ok || typeof body.url !== 'string') {
    throw new SpinError(
      'unreachable',
      `the web view at ${url} refused a login ticket (HTTP ${String(response.status)})`,
    );
  }
  return body.url;
}

/**
 * Opens `url` in the desktop's browser with `xdg-open` where there is one and a display to show
 * it on; says whether it tried. Never fails: a server without a browser just prints the address.
 */
export function openInBrowser(url: string): boolean {
  const display = process.env['DISPLAY'] ?? process.env['WAYLAND_DISPLAY'];
  const opener = (process.env['PATH'] ?? '')
    .split(delimiter)
    .map((dir) => join(dir, 'xdg-open'))
    .find((path) => existsSync(path));
  if (display === undefined || display === '' || opener === undefined) return false;
  try {
    const child = spawn(opener, [url], { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
    return true;
  } catch {
    return false;
  }
}
