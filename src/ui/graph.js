// A package's commands as its dependency graph, drawn as SVG where the daemon laid it out (with
// dagre, once per shape: a change of state only recolours), every node a keyboard-focusable
// button.
import { html } from './html.js';
import { useLayoutEffect } from '/vendor/hooks.mjs';

const path = (points) =>
  points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join('');

function clip(text, width) {
  const max = Math.floor((width - 16) / 7.5);
  return text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text;
}

/** The graph of `commands`; `onSelect(id)` on a click, Enter or Space. */
export function Graph({ commands, layout, selected, onSelect }) {
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
      ${layout.edges.map((e) => html`<path key="${e.from}>${e.to}" class="edge" d=${path(e.points)} marker-end="url(#arrow)" />`)}
      ${commands.map((c) => {
        const n = layout.nodes[c.id];
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
