import { timeOfDay } from '../core/duration.js';
import { formatCount, formatMib } from '../core/vm-budget.js';
import type { NodeStatus } from '../daemon/node-registry.js';

/**
 * The table of `spin nodes`: one line a node, under a header; a word when there is none. FREE
 * FOR VMS is what the node's last heartbeat left for VM starts under its own agent's policy.
 */
export function renderNodes(nodes: readonly NodeStatus[], now: number): string[] {
  if (nodes.length === 0)
    return ['No node has sent a heartbeat yet (start `spin agent --nats …`).'];
  const rows = nodes.map((node) => [
    node.name,
    node.state === 'online'
      ? 'online'
      : `offline since ${timeOfDay(node.offlineSince ?? node.lastHeartbeatAt)}`,
    `${ago(now - node.lastHeartbeatAt)} ago`,
    `${String(node.use.running)} running, load ${node.use.load1.toFixed(2)}/${String(node.capacity.cpus)}`,
    `${gib(node.use.memoryUsedBytes)}/${gib(node.capacity.memoryBytes)}`,
    `${gib(node.capacity.diskFreeBytes)} free`,
    String(node.use.vms),
    node.freeForVms === undefined
      ? '-'
      : `${formatCount(node.freeForVms.cpus)} CPU${node.freeForVms.cpus === 1 ? '' : 's'}, ${formatMib(node.freeForVms.memoryMib)}`,
    node.resources.join(','),
  ]);
  const header = [
    'NODE',
    'STATE',
    'HEARTBEAT',
    'CPU',
    'MEMORY (GiB)',
    'DISK (GiB)',
    'VMS',
    'FREE FOR VMS',
    'RESOURCES',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

function ago(ms: number): string {
  return ms < 60_000
    ? `${(Math.max(0, ms) / 1000).toFixed(1)}s`
    : `${String(Math.round(ms / 60_000))}m`;
}

function gib(bytes: number): string {
  return (bytes / 1024 ** 3).toFixed(1);
}
