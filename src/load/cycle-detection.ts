/** The part of a command the graph algorithms need. */
export interface GraphNode {
  id: string;
  needs: readonly string[];
}

/**
 * Every dependency cycle among `nodes`, one per strongly connected component of two or more
 * commands, each as the full path from the earliest command in file order back to itself:
 * `['a', 'b', 'c', 'a']` when a needs b, b needs c and c needs a. Self-needs and unknown ids are
 * not cycles here (they are reported on their own). Iterative Tarjan: a 100,000-command chain
 * does not overflow the stack.
 */
export function findCycles(nodes: readonly GraphNode[]): string[][] {
  const indexOf = new Map(nodes.map((n, i) => [n.id, i]));
  const edges = nodes.map((n) =>
    n.needs.flatMap((need) => {
      const j = indexOf.get(need);
      return j === undefined || need === n.id ? [] : [j];
    }),
  );

  const order = new Array<number>(nodes.length).fill(-1);
  const low = new Array<number>(nodes.length).fill(0);
  const onStack = new Array<boolean>(nodes.length).fill(false);
  const stack: number[] = [];
  const components: number[][] = [];
  let counter = 0;

  for (let root = 0; root < nodes.length; root++) {
    if (order[root] !== -1) continue;
    const work: [number, number][] = [[root, 0]];
    order[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (work.length > 0) {
      const top = work[work.length - 1];
      if (top === undefined) break;
      const [v, edge] = top;
      const out = edges[v] ?? [];
      if (edge < out.length) {
        top[1] = edge + 1;
        const w = out[edge] ?? 0;
        if (order[w] === -1) {
          order[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = true;
          work.push([w, 0]);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v] ?? 0, order[w] ?? 0);
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) low[parent[0]] = Math.min(low[parent[0]] ?? 0, low[v] ?? 0);
      if (low[v] === order[v]) {
        const component: number[] = [];
        let w: number | undefined;
        do {
          w = stack.pop();
          if (w === undefined) break;
          onStack[w] = false;
          component.push(w);
        } while (w !== v);
        if (component.length > 1) components.push(component);
      }
    }
  }

  return components
    .map((component) => cyclePath(component, edges).map((i) => nodes[i]?.id ?? ''))
    .sort((a, b) => (indexOf.get(a[0] ?? '') ?? 0) - (indexOf.get(b[0] ?? '') ?? 0));
}

/** The shortest cycle through the component's earliest node, by breadth-first search. */
function cyclePath(component: number[], edges: number[][]): number[] {
  const members = new Set(component);
  const start = Math.min(...component);
  const previous = new Map<number, number>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head] ?? start;
    for (const w of edges[v] ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (
          let at: number | undefined = v;
          at !== undefined && at !== start;
          at = previous.get(at)
        )
          path.push(at);
        path.push(start);
        return [path[0] ?? start, ...path.slice(1, -1).reverse(), start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}
