import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import type { CommandInput } from '../../src/broker/broker-types.js';
import type { Clock } from '../../src/core/clock.js';

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** A fresh temp directory to serve as SPIN_HOME, and its removal. */
export function tempHome(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'spin-daemon-test-'));
  return {
    dir,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `tempHome` for the running test: removed when it finishes, after what was registered later. */
export function testHome(): string {
  const home = tempHome();
  onTestFinished(home.remove);
  return home.dir;
}

/** A command on `resource` (node `local`), with test defaults. */
export function cmd(
  resource: string,
  extra: Partial<CommandInput> & { id?: string } = {},
): CommandInput {
  return {
    resource,
    action: 'noop',
    params: {},
    needs: [],
    node: 'local',
    timeoutMs: 60_000,
    retries: 0,
    ...extra,
  };
}

/** Resolves when `predicate` holds, checking after every event loop turn; never a fixed sleep. */
export async function until(
  predicate: () => boolean,
  what: string,
  limitMs = 20_000,
): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
