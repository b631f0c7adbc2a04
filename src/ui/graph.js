// A package's commands as its dependency graph: laid out by dagre (once per shape: a change of
// state only recolours), drawn as SVG, every node a keyboard-focusable button.
import { html } from './html.js';
import { useLayoutEffect, useMemo } from '/vendor/hooks.mjs';
import dagre from '/vendor/dagre.mjs';

const nodeHeight = 44;

/** Positions of nodes and edge routes for commands `{id, needs}`. */
export function layoutGraph(commands) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 16, ranksep: 36, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of commands) {
    g.setNode(c.id, {
      width: Math.min(220, Math.max(96, 7.5 * c.id.length + 28)),
      height: nodeHeight,
    });
  }
  for (const c of commands) {
    for (const need of c.needs) if (g.hasNode(need)) g.setEdge(need, c.id);
  }
  dagre.layout(g);
  const nodes = new Map();
  for (const id of g.nodes()) nodes.set(id, g.node(id));
  const edges = g.edges().map((e) => ({ key: `${e.v}>${e.w}`, points: g.edge(e).points }));
  const { width, height } = g.graph();
  return { width: Math.ceil(width), height: Math.ceil(height), nodes, edges };
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
  const layout = useMemo(() => layoutGraph(commands), [shape]);
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
