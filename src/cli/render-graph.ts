import type { CommandSpec, PackageSpec } from '../core/package.js';
import { unreachable } from '../core/errors.js';
import { topologicalOrder } from '../load/topological-order.js';

/** The formats `spin graph` can draw a package in. */
export type GraphFormat = 'text' | 'mermaid' | 'dot';

/**
 * Draws a package's DAG grouped by resource: plain text for a terminal, Mermaid (GitHub renders
 * it in Markdown) or Graphviz dot. Commands appear in run order, edges point from a command to
 * the ones that need it.
 */
export function renderGraph(pkg: PackageSpec, format: GraphFormat): string {
  const order = topologicalOrder(pkg.commands);
  const groups = groupByResource(order);
  switch (format) {
    case 'text':
      return renderText(pkg, groups, order);
    case 'mermaid':
      return renderMermaid(groups, order);
    case 'dot':
      return renderDot(pkg, groups, order);
    default:
      return unreachable(format);
  }
}

function groupByResource(order: CommandSpec[]): Map<string, CommandSpec[]> {
  const groups = new Map<string, CommandSpec[]>();
  for (const command of order) {
    const group = groups.get(command.resource);
    if (group) group.push(command);
    else groups.set(command.resource, [command]);
  }
  return groups;
}

function renderText(
  pkg: PackageSpec,
  groups: Map<string, CommandSpec[]>,
  order: CommandSpec[],
): string {
  const step = new Map(order.map((c, i) => [c.id, i + 1]));
  const width = String(order.length).length;
  const lines = [`package ${pkg.name} (${String(order.length)} commands, ${pkg.file})`];
  for (const [resource, commands] of groups) {
    lines.push('', `${resource}:`);
    for (const c of commands) {
      const needs = c.needs.length > 0 ? `  ← ${c.needs.join(', ')}` : '';
      lines.push(`  ${String(step.get(c.id)).padStart(width)}. ${c.id} (${c.action})${needs}`);
    }
  }
  return lines.join('\n') + '\n';
}

function renderMermaid(groups: Map<string, CommandSpec[]>, order: CommandSpec[]): string {
  const ids = new Map(order.map((c, i) => [c.id, `c${String(i)}`]));
  const lines = ['flowchart TD'];
  for (const [resource, commands] of groups) {
    lines.push(`  subgraph ${resource}`);
    for (const c of commands)
      lines.push(
        `    ${ids.get(c.id) ?? ''}["${mermaidText(c.id)}<br/><small>${c.action}</small>"]`,
      );
    lines.push('  end');
  }
  for (const c of order)
    for (const need of c.needs) lines.push(`  ${ids.get(need) ?? ''} --> ${ids.get(c.id) ?? ''}`);
  return lines.join('\n') + '\n';
}

function renderDot(
  pkg: PackageSpec,
  groups: Map<string, CommandSpec[]>,
  order: CommandSpec[],
): string {
  const lines = [`digraph ${JSON.stringify(pkg.name)} {`, '  rankdir=TB;', '  node [shape=box];'];
  for (const [resource, commands] of groups) {
    lines.push(
      `  subgraph ${JSON.stringify(`cluster_${resource}`)} {`,
      `    label=${JSON.stringify(resource)};`,
    );
    for (const c of commands)
      lines.push(`    ${JSON.stringify(c.id)} [label=${JSON.stringify(`${c.id}\n${c.action}`)}];`);
    lines.push('  }');
  }
  for (const c of order)
    for (const need of c.needs) lines.push(`  ${JSON.stringify(need)} -> ${JSON.stringify(c.id)};`);
  lines.push('}');
  return lines.join('\n') + '\n';
}

function mermaidText(text: string): string {
  return text.replace(/["<>]/g, (ch) => `#${String(ch.charCodeAt(0))};`);
}
