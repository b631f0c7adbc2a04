import dagreModule from '@dagrejs/dagre';

interface Point {
  x: number;
  y: number;
}
interface Box extends Point {
  width: number;
  height: number;
}
/** What this module uses of a dagre graph (its bundled types do not resolve under NodeNext). */
interface DagreGraph {
  setGraph(label: Record<string, unknown>): void;
  graph(): { width?: number; height?: number };
  setDefaultEdgeLabel(label: () => object): void;
  setNode(id: string, label: { width: number; height: number }): void;
  hasNode(id: string): boolean;
  setEdge(from: string, to: string): void;
  nodes(): string[];
  node(id: string): Box;
  edges(): { v: string; w: string }[];
  edge(e: { v: string; w: string }): { points?: Point[] };
}
const dagre = dagreModule as unknown as {
  graphlib: { Graph: new () => DagreGraph };
  layout(g: DagreGraph): void;
};

/** A command as the layout sees it. */
export interface LayoutInput {
  id: string;
  needs: readonly string[];
}

/** Where each node of a package's graph goes (its centre and size), and each edge's route. */
export interface GraphLayout {
  width: number;
  height: number;
  nodes: Record<string, { x: number; y: number; width: number; height: number }>;
  edges: { from: string; to: string; points: { x: number; y: number }[] }[];
}

const nodeHeight = 44;
const gap = 24;
/** The width parts are packed into rows of (a wider part has a row of its own). */
const rowWidth = 1200;
/** Layouts kept, by shape: a package's graph is laid out once, not on every page load. */
const cacheSize = 64;

const nodeWidth = (id: string): number => Math.min(220, Math.max(96, 7.5 * id.length + 28));
const cache = new Map<string, GraphLayout>();

/**
 * The layout of a package's dependency graph, for the web page to draw. Each connected part is
 * laid out by dagre on its own (top to bottom, the `tight-tree` ranker: about twice as fast as
 * `network-simplex` on these graphs, as tidy) and the parts are placed in rows, the commands
 * that stand alone in a grid after them. Laid out here rather than in the page, and kept per
 * shape (ids and needs): dagre takes ~100 ms for 300 commands in a freshly loaded page, which
 * would be most of its first paint; a change of state changes no layout.
 */
export function graphLayout(commands: readonly LayoutInput[]): GraphLayout {
  const shape = commands.map((c) => `${c.id}<${c.needs.join(',')}`).join(';');
  const known = cache.get(shape);
  if (known !== undefined) return known;
  const layout = layOut(commands);
  if (cache.size >= cacheSize) cache.delete(cache.keys().next().value ?? '');
  cache.set(shape, layout);
  return layout;
}

function layOut(commands: readonly LayoutInput[]): GraphLayout {
  const parts = components(commands);
  const alone = (p: LayoutInput[]): boolean => p.length === 1 && p[0]?.needs.length === 0;
  const laid = parts.filter((p) => !alone(p)).map(layOutPart);
  const width = Math.max(rowWidth, ...laid.map((p) => p.width));
  const loose = parts.filter(alone).flat();
  if (loose.length > 0) laid.push(grid(loose, width));
  const layout: GraphLayout = { width: 0, height: 0, nodes: {}, edges: [] };
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  for (const part of laid) {
    if (x > 0 && x + part.width > width) {
      x = 0;
      y += rowHeight + gap;
      rowHeight = 0;
    }
    const dx = x + gap / 2;
    const dy = y + gap / 2;
    for (const [id, n] of Object.entries(part.nodes)) {
      layout.nodes[id] = { ...n, x: n.x + dx, y: n.y + dy };
    }
    for (const e of part.edges) {
      layout.edges.push({ ...e, points: e.points.map((p) => ({ x: p.x + dx, y: p.y + dy })) });
    }
    x += part.width + gap;
    rowHeight = Math.max(rowHeight, part.height);
    layout.width = Math.max(layout.width, Math.ceil(x));
  }
  layout.height = Math.ceil(y + rowHeight + gap);
  return layout;
}

/** The weakly connected parts of the graph, largest first. */
function components(commands: readonly LayoutInput[]): LayoutInput[][] {
  const parent = new Map(commands.map((c) => [c.id, c.id]));
  const find = (id: string): string => {
    let at = id;
    for (let up = parent.get(at); up !== undefined && up !== at; up = parent.get(at)) at = up;
    parent.set(id, at);
    return at;
  };
  for (const c of commands) {
    for (const need of c.needs) if (parent.has(need)) parent.set(find(need), find(c.id));
  }
  const groups = new Map<string, LayoutInput[]>();
  for (const c of commands) {
    const root = find(c.id);
    const group = groups.get(root) ?? [];
    group.push(c);
    groups.set(root, group);
  }
  return [...groups.values()].sort((a, b) => b.length - a.length);
}

function layOutPart(commands: LayoutInput[]): GraphLayout {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 16, ranksep: 36, ranker: 'tight-tree' });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of commands) g.setNode(c.id, { width: nodeWidth(c.id), height: nodeHeight });
  for (const c of commands) {
    for (const need of c.needs) if (g.hasNode(need)) g.setEdge(need, c.id);
  }
  dagre.layout(g);
  const layout: GraphLayout = {
    width: g.graph().width ?? 0,
    height: g.graph().height ?? 0,
    nodes: {},
    edges: [],
  };
  for (const id of g.nodes()) {
    const n = g.node(id);
    layout.nodes[id] = { x: n.x, y: n.y, width: n.width, height: n.height };
  }
  for (const e of g.edges()) {
    layout.edges.push({ from: e.v, to: e.w, points: g.edge(e).points ?? [] });
  }
  return layout;
}

/** Commands that need nothing and that nothing needs, in rows. */
function grid(commands: LayoutInput[], width: number): GraphLayout {
  const layout: GraphLayout = { width: 0, height: nodeHeight, nodes: {}, edges: [] };
  let x = 0;
  let y = 0;
  for (const c of commands) {
    const w = nodeWidth(c.id);
    if (x > 0 && x + w > width) {
      x = 0;
      y += nodeHeight + 16;
    }
    layout.nodes[c.id] = { x: x + w / 2, y: y + nodeHeight / 2, width: w, height: nodeHeight };
    x += w + 16;
    layout.width = Math.max(layout.width, x - 16);
  }
  layout.height = y + nodeHeight;
  return layout;
}
