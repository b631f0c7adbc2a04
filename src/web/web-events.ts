import { existsSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { basename, dirname } from 'node:path';
import type { Broker } from '../broker/broker.js';
import type { BrokerEvent } from '../broker/broker-types.js';
import { readTail } from './web-views.js';

/** How long an EventSource waits before it reconnects to a daemon that went away. */
export const sseRetryMs = 1_000;
/** A comment line this often keeps proxies and the browser from timing a quiet stream out. */
const heartbeatMs = 15_000;
/** How much of a console a stream starts with. */
export const consoleTailBytes = 16 * 1024;
/** Changes of a file within this time are pushed as one. */
const settleMs = 50;

/**
 * The web page's pushed updates, as server-sent events. `/events` carries every broker event
 * (without the command specs, with the package's name) and `event: state` whenever the state file
 * or its journal changes; `/events/console` carries what a VM's console gained. Each stream
 * starts with `retry:` and an `event: hello` carrying `seq`, on which the page fetches its
 * snapshot again when it may have missed something: after a daemon restart the browser
 * reconnects by itself and the page catches up without a reload.
 */
export class WebEvents {
  readonly #broker: Broker;
  readonly #statePath: string;
  readonly #clients = new Set<ServerResponse>();
  readonly #consoles = new Set<ServerResponse>();
  readonly #names = new Map<string, string>();
  readonly #closers: (() => void)[] = [];
  readonly #onEvent: (event: BrokerEvent) => void;
  #seq = 0;

  constructor(options: {
    broker: Broker;
    statePath: string;
    onEvent: (event: BrokerEvent) => void;
  }) {
    this.#broker = options.broker;
    this.#statePath = options.statePath;
    this.#onEvent = options.onEvent;
  }

  /** Follows the broker and the state file. */
  async start(): Promise<void> {
    this.#closers.push(await this.#broker.subscribe((event) => void this.#relay(event)));
    const name = basename(this.#statePath);
    const dir = dirname(this.#statePath);
    if (existsSync(dir)) {
      const watcher = watch(dir, (_type, file) => {
        if (file === name || file === `${name}.journal`) stateChanged();
      });
      const stateChanged = settled(() => {
        this.#broadcast('event: state\ndata: {}\n\n');
      });
      this.#closers.push(() => {
        watcher.close();
      });
    }
    const timer = setInterval(() => {
      this.#broadcast(': heartbeat\n\n');
    }, heartbeatMs).unref();
    this.#closers.push(() => {
      clearInterval(timer);
    });
  }

  /**
   * How many updates were pushed so far. A snapshot answered when it was `n` and a stream whose
   * `hello` said `m ≤ n` miss nothing between them; the page fetches again only otherwise.
   */
  get seq(): number {
    return this.#seq;
  }

  /** Serves `/events` on `res`. */
  follow(res: ServerResponse): void {
    open(res, this.#seq);
    this.#clients.add(res);
    res.on('close', () => this.#clients.delete(res));
  }

  /**
   * Serves `/events/console` of the console file `path`: its tail first (`replaced: true`, as
   * after each reconnect), then what it gains; a new boot's console replaces it again.
   */
  followConsole(res: ServerResponse, path: string): void {
    open(res, 0);
    const dir = dirname(path);
    if (!existsSync(dir)) {
      // No such VM yet: the browser asks again after the retry time.
      res.end();
      return;
    }
    const send = (text: string, replaced: boolean): void => {
      res.write(`event: console\ndata: ${JSON.stringify({ text, replaced })}\n\n`);
    };
    const first = readTail(path, consoleTailBytes);
    let offset = first.size;
    send(first.text, true);
    const push = settled(() => {
      const size = readTail(path, 0).size;
      if (size < offset) {
        const tail = readTail(path, consoleTailBytes);
        offset = tail.size;
        send(tail.text, true);
        return;
      }
      const next = readTail(path, 0, offset);
      offset = next.size;
      if (next.text !== '') send(next.text, false);
    });
    const watcher: FSWatcher = watch(dir, (_type, file) => {
      if (file === basename(path)) push();
    });
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs).unref();
    this.#consoles.add(res);
    res.on('close', () => {
      this.#consoles.delete(res);
      watcher.close();
      clearInterval(heartbeat);
    });
  }

  /** Ends every stream and stops following. */
  close(): void {
    for (const close of this.#closers.splice(0)) close();
    for (const res of [...this.#clients, ...this.#consoles]) res.end();
    this.#clients.clear();
    this.#consoles.clear();
  }

  async #relay(event: BrokerEvent): Promise<void> {
    this.#onEvent(event);
    if (event.type === 'package') this.#names.set(event.packageId, event.name);
    let name = this.#names.get(event.packageId);
    if (name === undefined) {
      name = await this.#broker.status(event.packageId).then(
        (s) => s.name,
        () => '',
      );
      this.#names.set(event.packageId, name);
    }
    const { spec, output, ...rest } = event as BrokerEvent & { spec?: unknown; output?: unknown };
    this.#broadcast(`data: ${JSON.stringify({ ...rest, package: name })}\n\n`);
  }

  #broadcast(text: string): void {
    if (!text.startsWith(':')) this.#seq += 1;
    for (const res of this.#clients) res.write(text);
  }
}

function open(res: ServerResponse, seq: number): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  res.write(`retry: ${String(sseRetryMs)}\n\nevent: hello\ndata: {"seq":${String(seq)}}\n\n`);
}

/** `fn`, called once `settleMs` after the first of a burst of calls. */
function settled(fn: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  return () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      fn();
    }, settleMs);
  };
}
