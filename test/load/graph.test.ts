import { describe, expect, it } from 'vitest';
import { findCycles, type GraphNode } from '../../src/load/cycle-detection.js';
import { loadPackageText } from '../../src/load/load-package-file.js';
import { topologicalOrder } from '../../src/load/topological-order.js';
import { Validators } from '../../src/load/validators.js';

/** A graph from `id: needs` pairs, in the order given (the file order). */
function graph(spec: Record<string, string[]>): GraphNode[] {
  return Object.keys(spec).map((id) => ({ id, needs: spec[id]! }));
}

const ids = (nodes: readonly GraphNode[]): string[] => nodes.map((n) => n.id);

describe('findCycles', () => {
  it('finds nothing in an acyclic graph, and ignores self-needs and unknown ids', () => {
    expect(findCycles(graph({ a: [], b: ['a'], c: ['a', 'b', 'c', 'nope'] }))).toEqual([]);
    expect(findCycles([])).toEqual([]);
  });

  it('reports a cycle of two as the full path, from the earlier command in file order', () => {
    expect(findCycles(graph({ x: [], a: ['b'], b: ['a'] }))).toEqual([['a', 'b', 'a']]);
    expect(findCycles(graph({ b: ['a'], a: ['b'] }))).toEqual([['b', 'a', 'b']]);
  });

  it('reports a cycle of five as the full path', () => {
    const nodes = graph({ a: ['e'], b: ['a'], c: ['b'], d: ['c'], e: ['d'] });
    expect(findCycles(nodes)).toEqual([['a', 'e', 'd', 'c', 'b', 'a']]);
  });

  it('reports two separate cycles, one each, in file order', () => {
    const nodes = graph({
      p: ['q'],
      a: ['b'],
      q: ['r'],
      b: ['a'],
      r: ['p'],
      free: ['a', 'p'],
    });
    expect(findCycles(nodes)).toEqual([
      ['p', 'q', 'r', 'p'],
      ['a', 'b', 'a'],
    ]);
  });

  it('reports only the cycle of a cycle with a tail leading into it', () => {
    // tail1 → tail2 → c1 → c2 → c3 → c1; the tail is not part of the cycle.
    const nodes = graph({
      tail1: ['tail2'],
      tail2: ['c1'],
      c1: ['c2'],
      c2: ['c3'],
      c3: ['c1'],
      after: ['tail1'],
    });
    expect(findCycles(nodes)).toEqual([['c1', 'c2', 'c3', 'c1']]);
  });

  it('gives the shortest cycle through the earliest command of a tangled component', () => {
    // a → b → c → d → a, and a shortcut a → d.
    const nodes = graph({ a: ['b', 'd'], b: ['c'], c: ['d'], d: ['a'] });
    expect(findCycles(nodes)).toEqual([['a', 'd', 'a']]);
  });

  it('walks a 100,000-command chain without overflowing the stack', () => {
    const n = 100_000;
    const chain: GraphNode[] = Array.from({ length: n }, (_, i) => ({
      id: `c${String(i)}`,
      needs: i + 1 < n ? [`c${String(i + 1)}`] : [],
    }));
    expect(findCycles(chain)).toEqual([]);
    // Closing the chain makes one cycle through all of it.
    chain[n - 1] = { id: `c${String(n - 1)}`, needs: ['c0'] };
    const cycles = findCycles(chain);
    expect(cycles).toHaveLength(1);
    expect(cycles[0]).toHaveLength(n + 1);
    expect(cycles[0]?.slice(0, 3)).toEqual(['c0', 'c1', 'c2']);
    expect(cycles[0]?.at(-1)).toBe('c0');
  });
});

describe('topologicalOrder', () => {
  it('keeps file order when there are no needs', () => {
    const nodes = graph({ z: [], a: [], m: [], b: [] });
    expect(ids(topologicalOrder(nodes))).toEqual(['z', 'a', 'm', 'b']);
  });

  it('keeps file order wherever the needs allow', () => {
    // `first` needs `late`, so `late` moves up just enough; everything else keeps its place.
    const nodes = graph({ first: ['late'], second: [], late: [], last: ['first'] });
    expect(ids(topologicalOrder(nodes))).toEqual(['second', 'late', 'first', 'last']);
  });

  it('orders a diamond: the top, both sides in file order, then the bottom', () => {
    const nodes = graph({ bottom: ['right', 'left'], right: ['top'], left: ['top'], top: [] });
    expect(ids(topologicalOrder(nodes))).toEqual(['top', 'right', 'left', 'bottom']);
  });

  it('counts a need listed twice once', () => {
    const nodes = graph({ b: ['a', 'a'], a: [] });
    expect(ids(topologicalOrder(nodes))).toEqual(['a', 'b']);
  });

  it('orders a 100,000-command chain written backwards', () => {
    const n = 100_000;
    const chain: GraphNode[] = Array.from({ length: n }, (_, i) => ({
      id: `c${String(i)}`,
      needs: i + 1 < n ? [`c${String(i + 1)}`] : [],
    }));
    const order = ids(topologicalOrder(chain));
    expect(order).toHaveLength(n);
    expect(order[0]).toBe(`c${String(n - 1)}`);
    expect(order.at(-1)).toBe('c0');
  });

  it('leaves out the commands of a cycle (the loader reports those)', () => {
    const nodes = graph({ a: [], b: ['c'], c: ['b'], d: ['a'] });
    expect(ids(topologicalOrder(nodes))).toEqual(['a', 'd']);
  });
});

describe('file order of a loaded package', () => {
  it('is kept for ids JavaScript would reorder (integer-like keys come first in an object)', () => {
    const text = `package: numbered
commands:
  b: { resource: storage, action: add_volume, params: { path: b } }
  10: { resource: storage, action: add_volume, params: { path: c } }
  "2": { resource: storage, action: add_volume, params: { path: d } }
  __proto__: { resource: storage, action: add_volume, params: { path: e }, needs: [b] }
  a: { resource: storage, action: add_volume, params: { path: f }, needs: ["2"] }
`;
    const result = loadPackageText('numbered.spin.yaml', text, Validators.load());
    expect(result.diagnostics).toEqual([]);
    const commands = result.package!.commands;
    expect(ids(commands)).toEqual(['b', '10', '2', '__proto__', 'a']);
    expect(ids(topologicalOrder(commands))).toEqual(['b', '10', '2', '__proto__', 'a']);
  });
});
