import type { FieldPath } from './field-path.js';

/**
 * Finds an alias bomb before anything expands it. js-yaml resolves an alias to the same object
 * as its anchor, so the parsed document is a graph whose unfolded size can be exponential in
 * the file's. This walk visits each distinct object once and computes the unfolded size from
 * the children's sizes; when aliases add more than `maxExpanded` nodes, or `maxAliases` repeated references, it
 * returns the path of the reference that crossed the line.
 */
export function findAliasBomb(
  document: unknown,
  limits: { maxAliases: number; maxExpanded: number },
): { path: FieldPath; message: string } | undefined {
  const sizes = new Map<object, number>();
  let aliases = 0;
  let expansion = 0;
  let found: { path: FieldPath; message: string } | undefined;

  // Iterative post-order walk: deep documents must not overflow the stack.
  type Frame = {
    node: object;
    path: (string | number)[];
    children: [string | number, unknown][];
    next: number;
    size: number;
  };
  const frames: Frame[] = [];
  const enter = (node: object, path: (string | number)[]): void => {
    const children: [string | number, unknown][] = Array.isArray(node)
      ? node.map((v, i) => [i, v] as [number, unknown])
      : Object.entries(node);
    frames.push({ node, path, children, next: 0, size: 1 });
  };
  if (document === null || typeof document !== 'object') return undefined;
  enter(document, []);
  while (frames.length > 0 && found === undefined) {
    const frame = frames[frames.length - 1];
    if (frame === undefined) break;
    if (frame.next === frame.children.length) {
      frames.pop();
      sizes.set(frame.node, frame.size);
      const parent = frames[frames.length - 1];
      if (parent) parent.size += frame.size;
      continue;
    }
    const [key, child] = frame.children[frame.next++] ?? [0, undefined];
    if (child === null || typeof child !== 'object') {
      frame.size += 1;
      continue;
    }
    const known = sizes.get(child);
    if (known !== undefined || frames.some((f) => f.node === child)) {
      aliases += 1;
      const added = known ?? limits.maxExpanded + 1; // a reference back into itself never ends
      frame.size += added;
      expansion += added;
      if (aliases > limits.maxAliases) {
        found = {
          path: [...frame.path, key],
          message: `more than ${String(limits.maxAliases)} aliases to collections`,
        };
      } else if (expansion > limits.maxExpanded) {
        found = {
          path: [...frame.path, key],
          message: `aliases expand the document past ${String(limits.maxExpanded)} nodes (an alias bomb)`,
        };
      }
      continue;
    }
    enter(child, [...frame.path, key]);
  }
  return found;
}
