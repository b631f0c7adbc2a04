import { defaults } from '../core/defaults.js';
import { formatDuration } from '../core/duration.js';
import { SpinError } from '../core/errors.js';
import type { QueueStore } from './queue-store.js';

/** Whether a node has an agent to take its commands, and if not, why not and since when. */
export type NodeAvailability =
  { available: true } | { available: false; why: string; since?: number };

/** Who serves which node: a broker without a fleet serves only its own (`local`). */
export const localOnly = (node: string): NodeAvailability =>
  node === defaults.command.node
    ? { available: true }
    : { available: false, why: 'no agent has connected' };

/** The key of a package's meta that bounds how long its commands wait for their node. */
export const nodeWaitMetaKey = 'nodeWaitMs';

/**
 * Says why commands wait for their node, and ends the wait when it is bounded. A `ready` command
 * of a node without an agent gets the reason `waiting for node nodeb (no agent has connected)`
 * (or `(offline since 12:03:10)`), which status and progress show; when its package's meta has
 * `nodeWaitMs` (`spin apply --node-wait`) and the command waited that long for an unavailable
 * node, it fails with `node_unavailable` and what needs it is skipped. Run by the broker's sweep.
 */
export class NodeWatch {
  readonly #store: QueueStore;
  readonly #availability: (node: string, resource: string) => NodeAvailability;
  readonly #now: () => number;
  /** When this watch first saw each command waiting for its node. */
  readonly #since = new Map<string, number>();
  /** Each package's bound, once read (undefined: none). */
  readonly #bounds = new Map<string, number | undefined>();

  constructor(
    store: QueueStore,
    availability: (node: string, resource: string) => NodeAvailability,
    now: () => number = Date.now,
  ) {
    this.#store = store;
    this.#availability = availability;
    this.#now = now;
  }

  /** Looks at every unfinished package once. */
  async check(): Promise<void> {
    const now = this.#now();
    const seen = new Set<string>();
    for (const command of await this.#store.readyElsewhere(defaults.command.node)) {
      const availability = this.#availability(command.node, command.resource);
      if (availability.available) continue;
      const key = `${command.packageId}/${command.commandId}`;
      seen.add(key);
      const first = this.#since.get(key) ?? now;
      this.#since.set(key, first);
      const since = Math.max(first, availability.since ?? 0);
      const bound = await this.#bound(command.packageId);
      if (bound !== undefined && now - since >= bound) {
        const error = new SpinError(
          'node_unavailable',
          `node ${command.node} was unavailable for ${formatDuration(bound)} (${availability.why})`,
          { details: { node: command.node } },
        );
        await this.#store.abandon(command.packageId, command.commandId, error.toWire());
        continue;
      }
      const why = `waiting for node ${command.node} (${availability.why})`;
      if (command.reason !== why) {
        await this.#store.holdReason(command.packageId, command.commandId, why);
      }
    }
    for (const key of this.#since.keys()) if (!seen.has(key)) this.#since.delete(key);
    const packages = new Set([...seen].map((key) => key.slice(0, key.indexOf('/'))));
    for (const id of this.#bounds.keys()) if (!packages.has(id)) this.#bounds.delete(id);
  }

  async #bound(packageId: string): Promise<number | undefined> {
    if (!this.#bounds.has(packageId)) {
      const meta = (await this.#store.results(packageId)).meta ?? {};
      const value = meta[nodeWaitMetaKey];
      this.#bounds.set(packageId, typeof value === 'number' ? value : undefined);
    }
    return this.#bounds.get(packageId);
  }
}
