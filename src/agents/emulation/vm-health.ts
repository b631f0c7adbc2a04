import { createConnection } from 'node:net';
import { open, stat } from 'node:fs/promises';
import { defaults } from '../../core/defaults.js';
import { durationToMs } from '../../core/duration.js';
import { SpinError } from '../../core/errors.js';
import type { Params } from '../params.js';
import type { VmConfig } from './vm-config.js';

/**
 * A start's `health` block, with defaults filled in and durations in ms: stored in the VM's
 * supervision record (so a supervisor that adopts the VM checks it too), hence plain data.
 */
export interface HealthSettings {
  /** A forwarded host port: healthy when a connection to it on 127.0.0.1 brings data. */
  tcp?: number;
  /** A regular expression: healthy when what the console gained since the last check matches. */
  console?: string;
  intervalMs: number;
  timeoutMs: number;
  /** Failed checks in a row that make the VM unhealthy. */
  failures: number;
  /** How long after the VM's start checks begin. */
  graceMs: number;
}

function bad(field: string, expected: string): SpinError {
  return new SpinError('invalid_input', `Parameter 'health.${field}' must be ${expected}.`, {
    details: { field: `health.${field}` },
  });
}

function positiveMs(block: Params, field: string, fallback: number, zero = false): number {
  if (block[field] === undefined) return fallback;
  const ms = durationToMs(block[field]);
  if (ms === undefined || (ms === 0 && !zero)) throw bad(field, 'a duration above zero');
  return ms;
}

/**
 * The health check of a start's params (`health`), or undefined when it has none. A `tcp` port
 * must be one the VM's config forwards (the only way to reach the guest from the host), and
 * `console` a valid regular expression.
 */
export function healthOf(params: Params, config: VmConfig): HealthSettings | undefined {
  const value = params['health'];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad('', 'a mapping');
  const block = value as Params;
  const fallback = defaults.health;
  const settings: HealthSettings = {
    intervalMs: positiveMs(block, 'interval', fallback.intervalMs),
    timeoutMs: positiveMs(block, 'timeout', fallback.timeoutMs),
    failures: fallback.failures,
    graceMs: positiveMs(block, 'grace', fallback.graceMs, true),
  };
  const failures = block['failures'];
  if (failures !== undefined) {
    if (
      typeof failures !== 'number' ||
      !Number.isInteger(failures) ||
      failures < 1 ||
      failures > 100
    )
      throw bad('failures', 'an integer from 1 to 100');
    settings.failures = failures;
  }
  const tcp = block['tcp'];
  if (tcp !== undefined) {
    if (!config.ports.some((p) => p.protocol === 'tcp' && p.host === tcp))
      throw bad('tcp', `a tcp host port the VM forwards (ports of its config)`);
    settings.tcp = tcp as number;
  }
  const console = block['console'];
  if (console !== undefined) {
    if (typeof console !== 'string') throw bad('console', 'a regular expression');
    try {
      new RegExp(console, 'm');
    } catch (error) {
      throw new SpinError(
        'invalid_input',
        `health.console is not a valid regular expression: ${console}`,
        {
          cause: error,
        },
      );
    }
    settings.console = console;
  }
  if (settings.tcp === undefined && settings.console === undefined)
    throw bad('', 'a mapping with tcp or console');
  return settings;
}

/** How much of the console a check reads at most: the end of what it gained. */
const maxReadBytes = 256 * 1024;

/**
 * Runs a VM's health checks every `intervalMs` (after `graceMs`), and calls `onUnhealthy` once,
 * with why, when `failures` checks in a row failed; then stops. A check is healthy when every
 * check it has passes: `console`, the output the console gained since the check before matches;
 * `tcp`, a connection to 127.0.0.1 on the forwarded port brings data within `timeoutMs` (qemu's
 * user network accepts a forwarded connection whether the guest listens or not, so data is what
 * shows the guest answered: a banner, as SSH sends at once).
 */
export class HealthMonitor {
  readonly #settings: HealthSettings;
  readonly #console: string;
  readonly #onUnhealthy: (detail: string) => void;
  #timer: NodeJS.Timeout | undefined;
  #failed = 0;
  #offset = 0;
  #stopped = false;

  constructor(options: {
    settings: HealthSettings;
    consolePath: string;
    onUnhealthy: (detail: string) => void;
  }) {
    this.#settings = options.settings;
    this.#console = options.consolePath;
    this.#onUnhealthy = options.onUnhealthy;
  }

  /** Starts checking; the console is read from what it holds now on. */
  async start(): Promise<void> {
    this.#offset = await sizeOf(this.#console);
    this.#schedule(this.#settings.graceMs + this.#settings.intervalMs);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(
      () => {
        void this.#check();
      },
      Math.min(ms, 2 ** 31 - 1),
    );
  }

  async #check(): Promise<void> {
    const problems: string[] = [];
    const { console: pattern, tcp, timeoutMs } = this.#settings;
    if (pattern !== undefined && !new RegExp(pattern, 'm').test(await this.#consoleGained()))
      problems.push(`no console output matched /${pattern}/`);
    if (tcp !== undefined && !(await answers(tcp, timeoutMs)))
      problems.push(`port ${String(tcp)} did not answer`);
    if (this.#stopped) return;
    this.#failed = problems.length === 0 ? 0 : this.#failed + 1;
    if (this.#failed >= this.#settings.failures) {
      this.stop();
      this.#onUnhealthy(`${problems.join(', ')} in ${String(this.#failed)} checks in a row`);
      return;
    }
    this.#schedule(this.#settings.intervalMs);
  }

  async #consoleGained(): Promise<string> {
    let handle;
    try {
      handle = await open(this.#console, 'r');
    } catch {
      return '';
    }
    try {
      const { size } = await handle.stat();
      if (size < this.#offset) this.#offset = 0; // a new boot's console
      const from = Math.max(this.#offset, size - maxReadBytes);
      const buffer = Buffer.alloc(size - from);
      await handle.read(buffer, 0, buffer.length, from);
      this.#offset = size;
      return buffer.toString('utf8');
    } finally {
      await handle.close();
    }
  }
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (info) => info.size,
    () => 0,
  );
}

/** Whether a connection to 127.0.0.1:`port` brings data within `timeoutMs`. */
function answers(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => {
      done(false);
    }, timeoutMs);
    socket.once('data', () => {
      done(true);
    });
    socket.once('error', () => {
      done(false);
    });
    socket.once('close', () => {
      done(false);
    });
  });
}
