import { join } from 'node:path';
import { brokerPaths } from '../broker/broker-paths.js';
import type { Broker } from '../broker/broker.js';
import { daemonToken } from '../daemon/daemon-runner.js';
import { defaultUiPort, WebServer } from './web-server.js';

/**
 * Starts the daemon's web view for `home` on 127.0.0.1 (`port`, default 7474; 0 for any free
 * one), serving the page from `<root>/dist/ui` and showing the home's `state.json`. The daemon's
 * token (`spind.token`) is what mints login tickets.
 */
export async function startWebView(options: {
  broker: Broker;
  home: string;
  root: string;
  port?: number | undefined;
  nodes?: () => readonly object[];
}): Promise<WebServer> {
  const server = new WebServer({
    broker: options.broker,
    home: options.home,
    statePath: join(options.home, 'state.json'),
    staticDir: join(options.root, 'dist', 'ui'),
    token: daemonToken(brokerPaths(options.home)),
    port: options.port ?? defaultUiPort,
    ...(options.nodes === undefined ? {} : { nodes: options.nodes }),
  });
  await server.listen();
  return server;
}
