// A package's commands as its dependency graph: laid out by dagre (once per shape: a change of
// state only recolours), drawn as SVG, every node a keyboard-focusable button.
import { html } from './html.js';
import { useLayoutEffect, useMemo } from '/vendor/hooks.mjs';
import dagre from '/vendor/dagre.mjs';

const nodeHeight = 44;

const gap = 24;
const nodeWidth = (id) => Math.min(220, Math.max(96, 7.5 * id.length + 28));

/** The weakly connected components of the commands, largest first. */
function components(commands) {
  const parent = new Map(commands.map((c) => [c.id, c.id]));
  const find = (id) => {
    while (parent.get(id) !== id) {
      parent.set(id, parent.get(parent.get(id)));
      id = parent.get(id);
    }
    return id;
  };
  for (const c of commands) {
    for (const need of c.needs) if (parent.has(need)) parent.set(find(need), find(c.id));
  }
  const groups = new Map();
  for (const c of commands) {
    const root = find(c.id);
    if (!groups.has(root)) groups.set(root, []);
    groups.get(root).push(c);
  }
  return [...groups.values()].sort((a, b) => b.length - a.length);
}

/** One component laid out by dagre, at the origin. */
function layoutComponent(commands) {
  const g = new dagre.graphlib.Graph();
  // tight-tree ranks about twice as fast as network-simplex on these graphs, as tidily.
  g.setGraph({ rankdir: 'TB', nodesep: 16, ranksep: 36, ranker: 'tight-tree' });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of commands) g.setNode(c.id, { width: nodeWidth(c.id), height: nodeHeight });
  for (const c of commands) {
    for (const need of c.needs) if (g.hasNode(need)) g.setEdge(need, c.id);
  }
  dagre.layout(g);
  const nodes = new Map(g.nodes().map((id) => [id, g.node(id)]));
  const edges = g.edges().map((e) => ({ key: `${e.v}>${e.w}`, points: g.edge(e).points }));
  return { width: g.graph().width, height: g.graph().height, nodes, edges };
}

/** Commands that need nothing and nothing needs, in rows of a grid. */
function layoutLoose(commands, maxWidth) {
  const nodes = new Map();
  let x = 0;
  let y = 0;
  let width = 0;
  for (const c of commands) {
    const w = nodeWidth(c.id);
    if (x > 0 && x + w > maxWidth) {
      x = 0;
      y += nodeHeight + 16;
    }
    nodes.set(c.id, { x: x + w / 2, y: y + nodeHeight / 2, width: w, height: nodeHeight });
    x += w + 16;
    width = Math.max(width, x - 16);
  }
  return { width, height: y + nodeHeight, nodes, edges: [] };
}

/**
 * Positions of nodes and edge routes for commands `{id, needs}`: each connected part laid out on
 * its own (dagre's ordering grows faster than linearly, so many small parts cost little) and the
 * parts placed in rows, the commands that stand alone in a grid after them.
 */
export function layoutGraph(commands, maxWidth = 1200) {
  const parts = components(commands);
  const loose = parts.filter((p) => p.length === 1 && p[0].needs.length === 0).flat();
  const laid = parts.filter((p) => p.length > 1 || p[0].needs.length > 0).map(layoutComponent);
  const rowWidth = Math.max(maxWidth, ...laid.map((p) => p.width));
  if (loose.length > 0) laid.push(layoutLoose(loose, rowWidth));
  const nodes = new Map();
  const edges = [];
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  let width = 0;
  for (const part of laid) {
    if (x > 0 && x + part.width > rowWidth) {
      x = 0;
      y += rowHeight + gap;
      rowHeight = 0;
    }
    const dx = x + gap / 2;
    const dy = y + gap / 2;
    for (const [id, n] of part.nodes) nodes.set(id, { ...n, x: n.x + dx, y: n.y + dy });
    for (const e of part.edges) {
      edges.push({ key: e.key, points: e.points.map((p) => ({ x: p.x + dx, y: p.y + dy })) });
    }
    x += part.width + gap;
    rowHeight = Math.max(rowHeight, part.height);
    width = Math.max(width, x);
  }
  return { width: Math.ceil(width), height: Math.ceil(y + rowHeight + gap), nodes, edges };
}

const path = (points) =>
  points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join('');

function clip(text, width) {
  const max = Math.floor((width - 16) / 7.5);
  return text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text;
}

/** The graph of `commands`; `onSelect(id)` on a click, Enter or Space. */
export function Graph({ commands, selected, onSelect }) {
  const shape = commands.map((c) => `${c.id}<${c.needs.join(',')}`).join(';');
  const layout = useMemo(() => {
    performance.mark('spin-layout-start');
    const laid = layoutGraph(commands);
    performance.mark('spin-layout-end');
    return laid;
  }, [shape]);
  useLayoutEffect(() => {
    if (performance.getEntriesByName('spin-graph-rendered').length === 0) {
      performance.mark('spin-graph-rendered');
      requestAnimationFrame(() => setTimeout(() => performance.mark('spin-graph-painted'), 0));
    }
  }, [layout]);
  const key = (id) => (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onSelect(id);
    }
  };
  return html`
    <svg
      class="graph"
      width=${layout.width}
      height=${layout.height}
      viewBox="0 0 ${layout.width} ${layout.height}"
      role="group"
      aria-label="dependency graph"
    >
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto-start-reverse"
        >
          <path d="M0,0L10,5L0,10z" class="arrow" />
        </marker>
      </defs>
      ${layout.edges.map((e) => html`<path key=${e.key} class="edge" d=${path(e.points)} marker-end="url(#arrow)" />`)}
      ${commands.map((c) => {
        const n = layout.nodes.get(c.id);
        if (n === undefined) return null;
        const x = n.x - n.width / 2;
        const y = n.y - n.height / 2;
        return html`
          <g
            key=${c.id}
            class="node state-${c.state}${selected === c.id ? ' selected' : ''}"
            transform="translate(${x},${y})"
            tabindex="0"
            role="button"
            aria-pressed=${selected === c.id}
            aria-label="${c.id}: ${c.state}"
            data-command=${c.id}
            data-state=${c.state}
            onClick=${() => onSelect(c.id)}
            onKeyDown=${key(c.id)}
          >
            <rect width=${n.width} height=${n.height} rx="6" />
            <text x="10" y="18" class="label">${clip(c.id, n.width)}</text>
            <text x="10" y="34" class="sub"
              >${c.state}${c.attempt > 1 ? ` · ${c.attempt} attempts` : ''}</text
            >
          </g>
        `;
      })}
    </svg>
  `;
}
