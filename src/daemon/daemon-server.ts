import { defaults } from '../core/defaults.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { chmodSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { SpinError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import { AgentSession, wireErrorOf } from './agent-session.js';
import type { BrokerPaths } from '../broker/broker-paths.js';
import type { BrokerEvent } from '../broker/broker-types.js';
import type { LocalBroker } from '../broker/local-broker.js';
import { callApi, objectOf } from './broker-protocol.js';
import type { ApiOp, ProtocolContext } from './broker-protocol.js';
import type { NodeRegistry } from './node-registry.js';

/** The largest request body the API reads; larger ones get 413 and change nothing. */
export const maxBodyBytes = 4 * 1024 * 1024;

/** The upgrade token of the agent protocol (`Upgrade: spin-agent`). */
export const agentUpgradeToken = 'spin-agent';

/** Options of the daemon's API server. */
export interface DaemonServerOptions {
  broker: LocalBroker;
  paths: BrokerPaths;
  /** The fleet's nodes, as their heartbeats report them. */
  nodes: NodeRegistry;
  /** Also listen on loopback TCP, with this bearer token required on every request. */
  tcp?: { host: string; port: number; token: string };
  /** Called when a client asks the daemon to stop (`POST /v1/shutdown`). */
  onShutdownRequest?: () => void;
  version?: string;
}

/** What `GET /v1/health` answers. */
export interface DaemonHealth {
  service: 'spind';
  pid: number;
  home: string;
  version: string;
  startedAt: number;
  tcp?: { host: string; port: number };
  /** The web view's address, when the daemon serves one. */
  ui?: { url: string };
  /** Durable commits and the operations they carried, when the store counts them. */
  commits?: { commits: number; operations: number };
}

const statusOf: Partial<Record<ErrorCode, number>> = {
  invalid_input: 400,
  usage: 400,
  not_found: 404,
  state_conflict: 409,
  stale_attempt: 409,
  cancelled: 409,
  file_too_large: 413,
};

/** How often an event stream carries a heartbeat line (a follower's silence bound is longer). */
const heartbeatMs = 1_000;

/**
 * The daemon's HTTP JSON API on `$SPIN_HOME/spind.sock` (mode 0600 in a 0700 home), optionally
 * on loopback TCP with a bearer token. Routes, all JSON, errors as `{error: {code, message}}`:
 *
 *   GET  /v1/health                      DaemonHealth
 *   GET  /v1/nodes                       {nodes: NodeStatus[]}
 *   GET  /v1/packages                    {packages: PackageSummary[]}
 *   POST /v1/packages                    {name?, ttlMs?} → 201 {packageId}
 *   GET  /v1/packages/:id                PackageStatus
 *   POST /v1/packages/:id/commands       {commands} → {commandIds}
 *   POST /v1/packages/:id/enqueue        → {state}
 *   POST /v1/packages/:id/cancel         → {state}
 *   POST /v1/states {path, lineage}      which state file a CLI reconciles: a foreign lineage is named
 *   GET  /v1/events[?package=id]         NDJSON (or SSE with Accept: text/event-stream)
 *   POST /v1/shutdown                    → 202, then a graceful stop
 *   GET  /v1/agent?node=&resource=       Upgrade: spin-agent → the NDJSON agent protocol
 */
export class DaemonServer {
  readonly #options: DaemonServerOptions;
  readonly #servers: Server[] = [];
  readonly #sessions = new Set<AgentSession>();
  /** Open event streams, each with the heartbeat line of its format. */
  readonly #streams = new Map<ServerResponse, string>();
  #heartbeat: NodeJS.Timeout | undefined;
  readonly #tokenDigest: Buffer | undefined;
  readonly #startedAt = Date.now();
  /** The web view's address, set once it listens (`spin daemon run --ui`). */
  uiUrl: string | undefined;

  constructor(options: DaemonServerOptions) {
    this.#options = options;
    this.#tokenDigest = options.tcp ? digest(options.tcp.token) : undefined;
  }

  /** Listens on the socket (replacing a stale one: the caller holds the broker lock) and TCP. */
  async listen(): Promise<void> {
    const { paths, tcp } = this.#options;
    try {
      unlinkSync(paths.socket);
    } catch {
      // No stale socket.
    }
    const unix = this.#makeServer(false);
    const umask = process.umask(0o177);
    try {
      await listenOn(unix, (s, done) => s.listen(paths.socket, done));
    } finally {
      process.umask(umask);
    }
    chmodSync(paths.socket, 0o600);
    if (tcp) {
      if (!['127.0.0.1', '::1', 'localhost'].includes(tcp.host)) {
        throw new SpinError('invalid_input', `TCP listens on loopback only, not ${tcp.host}`);
      }
      const server = this.#makeServer(true);
      await listenOn(server, (s, done) => s.listen(tcp.port, tcp.host, done));
    }
  }

  /** The TCP port actually bound (when `tcp.port` was 0), if TCP is on. */
  get tcpPort(): number | undefined {
    const address = this.#servers[1]?.address();
    return typeof address === 'object' && address !== null ? address.port : undefined;
  }

  /** Stops listening, ends streams and agent connections (releasing their leases). */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const stream of this.#streams.keys()) stream.end();
    await Promise.all([...this.#sessions].map((s) => s.close()));
    await Promise.all(
      this.#servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => {
              resolve();
            });
            server.closeAllConnections();
          }),
      ),
    );
    try {
      unlinkSync(this.#options.paths.socket);
    } catch {
      // Already gone.
    }
  }

  #makeServer(needsToken: boolean): Server {
    const server = createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
      if (needsToken && !this.#authorized(req)) {
        send(res, 401, {
          error: { code: 'invalid_input', message: 'a valid bearer token is required' },
        });
        return;
      }
      this.#route(req, res).catch((error: unknown) => {
        const wire = wireErrorOf(error);
        send(res, statusOf[wire.code] ?? 500, { error: wire });
      });
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.#upgrade(req, socket, head, needsToken).catch(() => socket.destroy());
    });
    server.on('clientError', (_error, socket: Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
    this.#servers.push(server);
    return server;
  }

  #authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer (.+)$/.exec(header);
    if (!match?.[1] || this.#tokenDigest === undefined) return false;
    return timingSafeEqual(digest(match[1]), this.#tokenDigest);
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://spind');
    const parts = url.pathname.split('/').filter((p) => p !== '');
    const method = req.method ?? 'GET';
    if (parts[0] !== 'v1') throw notFound(url.pathname);
    const [, resource, id, action] = parts;
    const route = routeOf(method, resource, id, action, parts.length);
    if (route === undefined) throw notFound(url.pathname);
    if (route.method !== method) {
      throw new SpinError('usage', `method ${method} is not allowed here; use ${route.method}`);
    }
    if (route.op === 'events') {
      await this.#stream(req, res, url.searchParams.get('package') ?? undefined);
    } else if (route.op === 'shutdown') {
      send(res, 202, { stopping: true });
      setImmediate(() => this.#options.onShutdownRequest?.());
    } else {
      const body: unknown =
        method === 'POST' ? await readJson(req) : Object.fromEntries(url.searchParams.entries());
      const extra = id === undefined ? {} : { packageId: id };
      const context = this.protocolContext;
      const reply = await callApi(context, route.op, { ...objectOf(body), ...extra });
      send(res, route.op === 'packages.create' ? 201 : 200, reply);
    }
  }

  /** What the protocol's operations run against, for every transport of this daemon. */
  get protocolContext(): ProtocolContext {
    return {
      broker: this.#options.broker,
      nodes: this.#options.nodes,
      health: () => this.#health(),
    };
  }

  #health(): DaemonHealth {
    const health: DaemonHealth = {
      service: 'spind',
      pid: process.pid,
      home: this.#options.paths.home,
      version: this.#options.version ?? '0.0.0',
      startedAt: this.#startedAt,
    };
    const commits = this.#options.broker.store.stats?.();
    if (commits) health.commits = commits;
    if (this.uiUrl !== undefined) health.ui = { url: this.uiUrl };
    const port = this.tcpPort;
    if (this.#options.tcp && port !== undefined)
      health.tcp = { host: this.#options.tcp.host, port };
    return health;
  }

  async #stream(req: IncomingMessage, res: ServerResponse, packageId?: string): Promise<void> {
    const sse = (req.headers.accept ?? '').includes('text/event-stream');
    res.writeHead(200, {
      'content-type': sse ? 'text/event-stream' : 'application/x-ndjson',
      'cache-control': 'no-store',
    });
    const write = (value: BrokerEvent | { type: 'subscribed' }): void => {
      const json = JSON.stringify(value);
      res.write(sse ? `data: ${json}\n\n` : `${json}\n`);
    };
    const filter = packageId === undefined ? {} : { packageId };
    const unsubscribe = await this.#options.broker.subscribe(write, filter);
    this.#streams.set(res, sse ? ': heartbeat\n\n' : '\n');
    // A heartbeat tells a follower that a silent stream means a quiet daemon, not a dead one.
    this.#heartbeat ??= setInterval(() => {
      for (const [stream, line] of this.#streams) stream.write(line);
    }, heartbeatMs).unref();
    write({ type: 'subscribed' });
    res.on('close', () => {
      unsubscribe();
      this.#streams.delete(res);
    });
  }

  async #upgrade(req: IncomingMessage, socket: Socket, head: Buffer, needsToken: boolean) {
    const url = new URL(req.url ?? '/', 'http://spind');
    const node = url.searchParams.get('node') ?? defaults.command.node;
    const resource = url.searchParams.get('resource');
    const leaseMs = Number(url.searchParams.get('leaseMs') ?? '0');
    const refuse = (status: string, message: string): void => {
      const body = JSON.stringify({ error: { code: 'invalid_input', message } });
      socket.end(
        `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    if (needsToken && !this.#authorized(req)) {
      refuse('401 Unauthorized', 'a valid bearer token is required');
      return;
    }
    if (url.pathname !== '/v1/agent' || req.headers.upgrade !== agentUpgradeToken) {
      refuse('400 Bad Request', `upgrade to ${agentUpgradeToken} on /v1/agent only`);
      return;
    }
    if (!resource || !Number.isSafeInteger(leaseMs) || leaseMs < 0) {
      refuse('400 Bad Request', 'resource is required, and leaseMs must be an integer ≥ 0');
      return;
    }
    const holder = url.searchParams.get('holder');
    const consumer = await this.#options.broker.consumer({
      node,
      resource,
      ...(leaseMs > 0 ? { leaseMs } : {}),
      ...(holder ? { holder } : {}),
    });
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: ${agentUpgradeToken}\r\nconnection: Upgrade\r\n\r\n`,
    );
    const session = new AgentSession(socket, consumer, head, node);
    this.#sessions.add(session);
    socket.on('close', () => this.#sessions.delete(session));
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function listenOn(server: Server, listen: (s: Server, done: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    listen(server, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function notFound(path: string): SpinError {
  return new SpinError('not_found', `no route ${path}`);
}

/** The HTTP routes of the API: each names an operation of `apiOps`, or a stream of its own. */
function routeOf(
  method: string,
  resource: string | undefined,
  id: string | undefined,
  action: string | undefined,
  length: number,
): { method: string; op: ApiOp | 'events' | 'shutdown' } | undefined {
  if (length === 2) {
    switch (resource) {
      case 'health':
        return { method: 'GET', op: 'health' };
      case 'nodes':
        return { method: 'GET', op: 'nodes' };
      case 'packages':
        return method === 'GET'
          ? { method, op: 'packages.list' }
          : { method: 'POST', op: 'packages.create' };
      case 'states':
        return { method: 'POST', op: 'states.claim' };
      case 'events':
        return { method: 'GET', op: 'events' };
      case 'shutdown':
        return { method: 'POST', op: 'shutdown' };
      default:
        return undefined;
    }
  }
  if (resource !== 'packages' || id === undefined) return undefined;
  if (length === 3) return { method: 'GET', op: 'packages.status' };
  if (length !== 4) return undefined;
  switch (action) {
    case 'commands':
      return { method: 'POST', op: 'packages.commands' };
    case 'enqueue':
      return { method: 'POST', op: 'packages.enqueue' };
    case 'cancel':
      return { method: 'POST', op: 'packages.cancel' };
    default:
      return undefined;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  const close = status === 413 || status === 400;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
  // An unread (oversize or malformed) body must not be parsed as the next request.
  if (close) res.on('finish', () => res.req.socket.destroy());
}

/** Reads a JSON body of at most `maxBodyBytes`; an empty body is `undefined`. */
function readJson(req: IncomingMessage): Promise<unknown> {
  const tooLarge = (): SpinError =>
    new SpinError('file_too_large', `the request body is over ${String(maxBodyBytes)} bytes`);
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? '0') > maxBodyBytes) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        // Stop reading; the 413 goes out with `connection: close`.
        req.pause();
        reject(tooLarge());
      } else {
        chunks.push(chunk);
      }
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size === 0) {
        resolve(undefined);
        return;
      }
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      } catch (error) {
        reject(
          new SpinError(
            'invalid_input',
            `the request body is not JSON: ${(error as Error).message}`,
          ),
        );
      }
    });
  });
}
