import { createHash } from 'node:crypto';
import type { CommandSpec } from '../core/package.js';

/**
 * The identity of what a command does: its resource, action, node and params, as canonical JSON
 * (keys sorted at every level) hashed with SHA-256. Needs, timeouts and retries are left out:
 * changing them changes when or how patiently a command runs, not what it makes.
 */
export function specHash(
  command: Pick<CommandSpec, 'resource' | 'action' | 'node' | 'params'>,
): string {
  const canonical = canonicalJson({
    resource: command.resource,
    action: command.action,
    node: command.node,
    params: command.params,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/** JSON with object keys sorted at every level, so equal values always give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  const text = JSON.stringify(value) as string | undefined; // undefined for undefined itself
  return text ?? 'null';
}

/**
 * The params fields whose values differ between two versions of a command, as field paths:
 * `params.image_size`, `params.vm.memory`. Used to say why a command will be updated.
 */
export function changedFields(before: unknown, after: unknown, prefix = 'params'): string[] {
  if (canonicalJson(before) === canonicalJson(after)) return [];
  const isMap = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isMap(before) || !isMap(after)) return [prefix];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.flatMap((k) => changedFields(before[k], after[k], `${prefix}.${k}`));
}
