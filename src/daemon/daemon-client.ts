import { Agent, request } from 'node:http';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { SpinError, messageOf } from '../core/errors.js';
import type { WireError } from '../core/errors.js';
import { durationToMs, formatDuration } from '../core/duration.js';
import type { Broker, ConsumerOptions, QueueConsumer, SubscribeOptions } from '../broker/broker.js';
import type {
  AckOutcome,
  AckResult,
  AttemptRef,
  BrokerEvent,
  BrokerListener,
  CommandInput,
  Lease,
  NewPackageOptions,
  PackageState,
  PackageStatus,
} from '../broker/broker-types.js';
import { agentUpgradeToken } from './daemon-server.js';
import type { DaemonHealth } from './daemon-server.js';
import type { NodeStatus } from './node-registry.js';
import type { AckReply, PackageSummary } from '../broker/queue-store.js';
import { writeCorked } from './write-corked.js';

/** Where a daemon listens: its unix socket, or loopback TCP with the bearer token. */
export type DaemonEndpoint = (
  { socketPath: string } | { host: string; port: number; token: string }
) & {
  /**
   * How long a request, or an event stream with no word (the daemon sends a heartbeat every
   * few seconds), may wait for the daemon before it counts as gone: `unreachable`, exit 4.
   * `daemonTimeoutMs()` by default.
   */
  timeoutMs?: number;
};

/**
 * The bound on waiting for the daemon: `SPIN_DAEMON_TIMEOUT` (a duration: `30s`, `2m`), else
 * 30 s. A paused or hung daemon ends a command with exit 4 after this, never a hang.
 */
export function daemonTimeoutMs(): number {
  return durationToMs(process.env['SPIN_DAEMON_TIMEOUT']) ?? 30_000;
}

/**
 * The broker in a running daemon, reached over its socket: plain HTTP JSON for the CLI's
 * requests, an NDJSON event stream for `subscribe`, and one upgraded long-lived NDJSON
 * connection per consumer (an ack and the next lease in one round trip). Errors come back as
 * SpinErrors rebuilt from their code; a daemon that does not answer is `unreachable` (exit 4).
 */
export class DaemonClient implements Broker {
  readonly kind = 'daemon' as const;
  readonly #endpoint: DaemonEndpoint;
  readonly #timeoutMs: number;
  readonly #agent = new Agent({ keepAlive: true });
  readonly #streams = new Set<ClientRequest>();
  readonly #consumers = new Set<QueueConsumer>();

  constructor(endpoint: DaemonEndpoint) {
    this.#endpoint = endpoint;
    this.#timeoutMs = endpoint.timeoutMs ?? daemonTimeoutMs();
  }

  /** Connects and checks that a spin daemon answers; `unreachable` otherwise. */
  static async connect(endpoint: DaemonEndpoint): Promise<DaemonClient> {
    const client = new DaemonClient(endpoint);
    try {
      await client.health();
      return client;
    } catch (error) {
      await client.close();
      throw error;
    }
  }

  health(): Promise<DaemonHealth> {
    return this.#call<DaemonHealth>('GET', '/v1/health');
  }
  /** The fleet's nodes, as their heartbeats reported them. */
  async nodes(): Promise<NodeStatus[]> {
    return (await this.#call<{ nodes: NodeStatus[] }>('GET', '/v1/nodes')).nodes;
  }
  /** Asks the daemon to stop gracefully; resolves once it accepted. */
  async shutdown(): Promise<void> {
    await this.#call('POST', '/v1/shutdown');
  }
  async createPackage(options: NewPackageOptions = {}): Promise<string> {
    return (await this.#call<{ packageId: string }>('POST', '/v1/packages', options)).packageId;
  }
  async addCommands(packageId: string, commands: readonly CommandInput[]): Promise<string[]> {
    const path = `/v1/packages/${encodeURIComponent(packageId)}/commands`;
    return (await this.#call<{ commandIds: string[] }>('POST', path, { commands })).commandIds;
  }
  async enqueue(packageId: string): Promise<PackageState> {
    const path = `/v1/packages/${encodeURIComponent(packageId)}/enqueue`;
    return (await this.#call<{ state: PackageState }>('POST', path)).state;
  }
  async cancel(packageId: string): Promise<PackageState> {
    const path = `/v1/packages/${encodeURIComponent(packageId)}/cancel`;
    return (await this.#call<{ state: PackageState }>('POST', path)).state;
  }
  async claimState(path: string, lineage: string, adopt: boolean): Promise<string | undefined> {
    const reply = await this.#call<{ known: string | null }>('POST', '/v1/states', {
      path,
      lineage,
      adopt,
    });
    return reply.known ?? undefined;
  }
  status(packageId: string): Promise<PackageStatus> {
    return this.#call<PackageStatus>('GET', `/v1/packages/${encodeURIComponent(packageId)}`);
  }
  async listPackages(limit = 100): Promise<PackageSummary[]> {
    const path = `/v1/packages?limit=${String(limit)}`;
    return (await this.#call<{ packages: PackageSummary[] }>('GET', path)).packages;
  }

  /**
   * Follows the daemon's event stream. The daemon sends a heartbeat every few seconds: a stream
   * silent for the timeout, or one that ends before it is unsubscribed, is lost (`onLost`).
   */
  subscribe(listener: BrokerListener, options: SubscribeOptions = {}): Promise<() => void> {
    const query =
      options.packageId === undefined ? '' : `?package=${encodeURIComponent(options.packageId)}`;
    return new Promise((resolve, reject) => {
      let ended = false;
      let silence: NodeJS.Timeout | undefined;
      const end = (error?: SpinError): void => {
        if (ended) return;
        ended = true;
        clearTimeout(silence);
        this.#streams.delete(req);
        req.destroy();
        if (error !== undefined) {
          reject(error);
          options.onLost?.(error);
        }
      };
      const heard = (): void => {
        clearTimeout(silence);
        silence = setTimeout(() => {
          end(silent(this.#timeoutMs));
        }, this.#timeoutMs);
      };
      const req = request(this.#options('GET', `/v1/events${query}`), (res) => {
        if (res.statusCode !== 200) {
          end(new SpinError('internal', `the event stream answered ${String(res.statusCode)}`));
          res.resume();
          return;
        }
        res.on('data', heard);
        res.on('close', () => {
          end(unreachable(new Error('the daemon closed its event stream')));
        });
        readLines(res, (line) => {
          const value = JSON.parse(line) as BrokerEvent | { type: 'subscribed' };
          if (value.type === 'subscribed') {
            resolve(() => {
              end();
            });
          } else {
            listener(value);
          }
        });
      });
      req.on('error', (error) => {
        end(unreachable(error));
      });
      heard();
      this.#streams.add(req);
      req.end();
    });
  }

  consumer(options: ConsumerOptions): Promise<QueueConsumer> {
    const query = new URLSearchParams({ node: options.node, resource: options.resource });
    if (options.leaseMs !== undefined) query.set('leaseMs', String(options.leaseMs));
    if (options.holder !== undefined) query.set('holder', options.holder);
    const base = this.#options('GET', `/v1/agent?${query.toString()}`);
    return new Promise((resolve, reject) => {
      const req = request({
        ...base,
        agent: false,
        headers: { ...this.#headers(), connection: 'Upgrade', upgrade: agentUpgradeToken },
      });
      req.on('upgrade', (_res: IncomingMessage, socket: Socket, head: Buffer) => {
        const consumer = new RemoteConsumer(socket, head, () => this.#consumers.delete(consumer));
        this.#consumers.add(consumer);
        resolve(consumer);
      });
      req.on('response', (res: IncomingMessage) => {
        collect(res).then(
          (body) => {
            reject(errorFromResponse(res.statusCode ?? 500, body));
          },
          (error: unknown) => {
            reject(unreachable(error));
          },
        );
      });
      req.on('error', (error) => {
        reject(unreachable(error));
      });
      req.end();
    });
  }

  async close(): Promise<void> {
    for (const req of this.#streams) req.destroy();
    this.#streams.clear();
    await Promise.all([...this.#consumers].map((c) => c.close()));
    this.#agent.destroy();
  }

  #headers(): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if ('token' in this.#endpoint) headers['authorization'] = `Bearer ${this.#endpoint.token}`;
    return headers;
  }

  #options(method: string, path: string): RequestOptions {
    const endpoint = this.#endpoint;
    const headers = this.#headers();
    const where =
      'socketPath' in endpoint
        ? { socketPath: endpoint.socketPath }
        : { host: endpoint.host, port: endpoint.port };
    return { ...where, method, path, headers, agent: this.#agent };
  }

  #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      const base = this.#options(method, path);
      const text = body === undefined ? undefined : JSON.stringify(body);
      const headers =
        text === undefined
          ? this.#headers()
          : { ...this.#headers(), 'content-type': 'application/json' };
      const timer = setTimeout(() => {
        req.destroy(silent(this.#timeoutMs));
      }, this.#timeoutMs);
      const req = request({ ...base, headers }, (res) => {
        collect(res).then((data) => {
          clearTimeout(timer);
          const status = res.statusCode ?? 500;
          if (status >= 200 && status < 300) resolve(JSON.parse(data) as T);
          else reject(errorFromResponse(status, data));
        }, reject);
      });
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(error instanceof SpinError ? error : unreachable(error));
      });
      req.end(text);
    });
  }
}

/** A consumer on an upgraded agent connection: requests by id, answers in any order. */
class RemoteConsumer implements QueueConsumer {
  readonly #socket: Socket;
  readonly #pending = new Map<
    number,
    { resolve: (v: Reply) => void; reject: (e: unknown) => void }
  >();
  readonly #onClose: () => void;
  #nextId = 1;
  #closed = false;

  constructor(socket: Socket, head: Buffer, onClose: () => void) {
    this.#socket = socket;
    this.#onClose = onClose;
    socket.setNoDelay(true);
    const decoder = new StringDecoder('utf8');
    let buffer = decoder.write(head);
    const drain = (): void => {
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        this.#answer(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buffer += decoder.write(chunk);
      drain();
    });
    socket.on('close', () => {
      this.#finish();
    });
    socket.on('error', () => undefined);
    drain();
  }

  async lease(options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<Lease | undefined> {
    // An abort cannot recall a request on the wire; the lease it may bring is released instead.
    const reply = await this.#request({ op: 'lease', waitMs: options.waitMs ?? 0 });
    const lease = (reply['lease'] as Lease | null) ?? undefined;
    if (lease !== undefined && options.signal?.aborted === true) {
      await this.release(lease);
      return undefined;
    }
    return lease;
  }
  async renew(ref: AttemptRef): Promise<number> {
    return (await this.#request({ op: 'renew', ref: refOf(ref) }))['leaseExpiresAt'] as number;
  }
  async ack(
    ref: AttemptRef,
    result: AckResult,
    options: { next?: boolean } = {},
  ): Promise<AckReply> {
    const reply = await this.#request({
      op: 'ack',
      ref: refOf(ref),
      result,
      next: options.next === true,
    });
    const outcome = reply['outcome'] as AckOutcome;
    const next = reply['next'] as Lease | undefined;
    return next === undefined ? { outcome } : { outcome, next };
  }
  async release(ref: AttemptRef): Promise<void> {
    await this.#request({ op: 'release', ref: refOf(ref) });
  }
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#socket.once('close', () => {
        resolve();
      });
      this.#socket.end();
    });
  }

  #request(body: Record<string, unknown>): Promise<Reply> {
    if (this.#closed)
      return Promise.reject(new SpinError('unreachable', 'the agent connection is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      writeCorked(this.#socket, JSON.stringify({ id, ...body }) + '\n');
    });
  }

  #answer(line: string): void {
    const reply = JSON.parse(line) as Reply & { id: number | null; ok: boolean; error?: WireError };
    const waiter = reply.id === null ? undefined : this.#pending.get(reply.id);
    if (waiter === undefined) return;
    this.#pending.delete(reply.id as number);
    if (reply.ok) waiter.resolve(reply);
    else
      waiter.reject(SpinError.fromWire(reply.error ?? { code: 'internal', message: 'no error' }));
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of this.#pending.values()) {
      waiter.reject(new SpinError('unreachable', 'the daemon closed the agent connection'));
    }
    this.#pending.clear();
    this.#onClose();
  }
}

type Reply = Record<string, unknown>;

function refOf(ref: AttemptRef): AttemptRef {
  return { packageId: ref.packageId, commandId: ref.commandId, attemptId: ref.attemptId };
}

function readLines(stream: IncomingMessage, onLine: (line: string) => void): void {
  let buffer = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffer += chunk;
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.startsWith('{')) onLine(line);
      newline = buffer.indexOf('\n');
    }
  });
  stream.on('error', () => undefined);
}

function collect(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    res.on('error', reject);
  });
}

function errorFromResponse(status: number, body: string): SpinError {
  try {
    const parsed = JSON.parse(body) as { error?: WireError };
    if (parsed.error) return SpinError.fromWire(parsed.error);
  } catch {
    // Not JSON: fall through.
  }
  return new SpinError('internal', `the daemon answered ${String(status)}: ${body.slice(0, 200)}`);
}

/** A daemon that said nothing for `ms`: paused, hung, or its machine gone. */
function silent(ms: number): SpinError {
  return new SpinError(
    'unreachable',
    `the spin daemon did not answer within ${formatDuration(ms)} (paused or hung?)`,
    {
      retryable: true,
      suggestions: [
        'check it with `spin daemon status`; SPIN_DAEMON_TIMEOUT sets how long spin waits',
      ],
    },
  );
}

function unreachable(error: unknown): SpinError {
  return new SpinError('unreachable', `the spin daemon does not answer: ${messageOf(error)}`, {
    cause: error,
    suggestions: ['start it with `spin daemon start`, or run without it (spin embeds the broker)'],
  });
}
