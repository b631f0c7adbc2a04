import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brokerPaths } from '../broker/broker-paths.js';
import type { BrokerPaths } from '../broker/broker-paths.js';
import type { BrokerTimings } from '../broker/broker-semantics.js';
import { DaemonServer } from './daemon-server.js';
import type { NatsOptions } from './nats-connection.js';
import type { NatsResponder, RemoteHandlers } from './nats-responder.js';
import { NodeRegistry } from './node-registry.js';
import { openOwnedBroker } from '../broker/embedded-broker.js';
import type { Broker } from '../broker/broker.js';
import type { PackageResults, RecoveryReport } from '../broker/broker-types.js';
import { terminalPackageStates } from '../broker/broker-types.js';

/** What the daemon reports about itself; `spin daemon run` renders these as log lines. */
export type DaemonLogEntry =
  | {
      type: 'listening';
      pid: number;
      socket: string;
      tcpPort?: number;
      nats?: string;
      ui?: string;
    }
  | { type: 'recovered'; report: RecoveryReport }
  | { type: 'recorded'; package: string; statePath: string; results: number }
  | { type: 'record-failed'; package: string; error: string }
  | { type: 'stopping'; reason: string }
  | { type: 'stopped' };

/** Options of a daemon process. */
export interface DaemonRunOptions {
  home: string;
  /** Also serve on loopback TCP (port 0: any free port), with the token of `spind.token`. */
  tcp?: { host: string; port: number };
  /** Also answer over NATS: the API, the agents of every node, heartbeats, events. */
  nats?: NatsOptions;
  /**
   * Operations added to the NATS API by the process (remote applies, see remote-runs.ts), given
   * the fleet's nodes (a remote plan checks VMs against what their nodes report).
   */
  remote?: (nodes: NodeRegistry) => RemoteHandlers;
  version?: string;
  log?: (entry: DaemonLogEntry) => void;
  timings?: Partial<BrokerTimings>;
  /**
   * Consumers to run in the daemon's own process (the built-in agents), started once it listens;
   * the function returned stops them, before the broker closes.
   */
  host?: (broker: Broker) => () => Promise<void>;
  /**
   * Hears of every package that finished, with its results; the daemon waits for it before it
   * stops. `spin daemon run` records there the results of a run whose submitter died.
   */
  onFinished?: (results: PackageResults) => Promise<void>;
  /**
   * A server beside the API (the web view), started once the API listens and closed before the
   * broker; its address goes into the health and the `listening` entry.
   */
  ui?: (
    broker: Broker,
    nodes: () => readonly object[],
  ) => Promise<{ url: string; close(): Promise<void> }>;
}

/** A started daemon: `stop` ends it gracefully; `stopped` settles when it has ended. */
export interface RunningDaemon {
  paths: BrokerPaths;
  server: DaemonServer;
  stop(reason: string): Promise<void>;
  stopped: Promise<void>;
}

/**
 * Starts the daemon of `home` in this process: takes the broker lock (a second daemon fails
 * with `daemon_running`, exit 3, naming the holder's pid), recovers the store, and serves the
 * API on the socket (and TCP when asked). Signals are the caller's business: call `stop`.
 */
export async function startDaemon(options: DaemonRunOptions): Promise<RunningDaemon> {
  const paths = brokerPaths(options.home);
  const broker = await openOwnedBroker(
    {
      home: options.home,
      command: 'spin daemon',
      ...(options.timings ? { timings: options.timings } : {}),
    },
    'daemon',
  );
  if (broker.recovery !== undefined && broker.recovery.cancelled.length > 0) {
    options.log?.({ type: 'recovered', report: broker.recovery });
  }
  const finishing = new Set<Promise<void>>();
  const onFinished = options.onFinished;
  if (onFinished !== undefined) {
    broker.store.subscribe((event) => {
      if (event.type !== 'package' || !terminalPackageStates.has(event.to)) return;
      const done = broker.store
        .results(event.packageId)
        .then(onFinished)
        .catch(() => undefined) // `onFinished` reports its own failures
        .finally(() => finishing.delete(done));
      finishing.add(done);
    });
  }
  let stopping: Promise<void> | undefined;
  // Set once the daemon listens; read by `stop`, which may run before that.
  const hosted: {
    stop: (() => Promise<void>) | undefined;
    ui?: { close(): Promise<void> } | undefined;
  } = { stop: undefined };
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      options.log?.({ type: 'stopping', reason });
      await hosted.ui?.close();
      await hosted.stop?.();
      await Promise.all(finishing);
      await responder?.close();
      await server.close();
      await broker.close();
      options.log?.({ type: 'stopped' });
      resolveStopped();
    })();
    return stopping;
  };
  let responder: NatsResponder | undefined;
  const nodes = new NodeRegistry(join(paths.home, 'nodes.json'));
  broker.watchNodes((node, resource) => nodes.availability(node, resource));
  const server = new DaemonServer({
    broker,
    paths,
    nodes,
    ...(options.tcp ? { tcp: { ...options.tcp, token: daemonToken(paths) } } : {}),
    ...(options.version ? { version: options.version } : {}),
    onShutdownRequest: () => {
      void stop('asked over the API');
    },
  });
  try {
    await server.listen();
    if (options.nats !== undefined) {
      const { NatsResponder } = await import('./nats-responder.js');
      responder = await NatsResponder.start(
        server.protocolContext,
        options.nats,
        options.remote?.(nodes),
      );
    }
  } catch (error) {
    await server.close();
    await broker.close();
    throw error;
  }
  if (options.ui !== undefined) {
    try {
      const ui = await options.ui(broker, () => nodes.list());
      hosted.ui = ui;
      server.uiUrl = ui.url;
    } catch (error) {
      await server.close();
      await broker.close();
      throw error;
    }
  }
  hosted.stop = options.host?.(broker);
  const port = server.tcpPort;
  options.log?.({
    type: 'listening',
    pid: process.pid,
    socket: paths.socket,
    ...(port === undefined ? {} : { tcpPort: port }),
    ...(server.uiUrl === undefined ? {} : { ui: server.uiUrl }),
    ...(options.nats === undefined ? {} : { nats: options.nats.url }),
  });
  return { paths, server, stop, stopped };
}

/** The bearer token of the TCP listener: `spind.token` (0600), created on first use. */
export function daemonToken(paths: BrokerPaths): string {
  try {
    const token = readFileSync(paths.tokenFile, 'utf8').trim();
    if (token.length >= 32) return token;
  } catch {
    // Not created yet.
  }
  const token = randomBytes(32).toString('base64url');
  writeFileSync(paths.tokenFile, token + '\n', { mode: 0o600 });
  return token;
}
