import type { GraphNode } from './cycle-detection.js';

/**
 * The commands in an order where each comes after everything it needs, and otherwise in file
 * order: of the commands ready to go, the earliest in the file goes first (Kahn's algorithm
 * with a binary heap of file positions). Deterministic for a given file. The graph must be
 * acyclic and its needs known (the loader has checked both).
 */
export function topologicalOrder<T extends GraphNode>(nodes: readonly T[]): T[] {
  const indexOf = new Map(nodes.map((n, i) => [n.id, i]));
  const waiting = new Array<number>(nodes.length).fill(0);
  const dependents: number[][] = nodes.map(() => []);
  nodes.forEach((node, i) => {
    for (const need of new Set(node.needs)) {
      const j = indexOf.get(need);
      if (j === undefined || j === i) continue;
      waiting[i] = (waiting[i] ?? 0) + 1;
      dependents[j]?.push(i);
    }
  });

  const heap = new MinHeap();
  waiting.forEach((count, i) => {
    if (count === 0) heap.push(i);
  });
  const order: T[] = [];
  for (let i = heap.pop(); i !== undefined; i = heap.pop()) {
    const node = nodes[i];
    if (node !== undefined) order.push(node);
    for (const d of dependents[i] ?? []) {
      waiting[d] = (waiting[d] ?? 0) - 1;
      if (waiting[d] === 0) heap.push(d);
    }
  }
  return order;
}

class MinHeap {
  readonly #items: number[] = [];

  push(value: number): void {
    const items = this.#items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] ?? 0) <= value) break;
      items[i] = items[parent] ?? 0;
      i = parent;
    }
    items[i] = value;
  }

  pop(): number | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && (items[right] ?? 0) < (items[left] ?? 0) ? right : left;
      if ((items[child] ?? 0) >= last) break;
      items[i] = items[child] ?? 0;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
