import type { LoadOptions, State } from 'js-yaml';

/**
 * Where each node of a YAML document starts, recorded from js-yaml's parse events rather than
 * from a second, slower parser. A PositionNode mirrors one mapping, sequence or scalar; lookups
 * by field path find the closest recorded node, so a diagnostic always has a line and column.
 *
 * js-yaml reports every node it composes with an `open` and a `close` event. A child that is
 * followed by `:` is a key; the next child of the same parent is that key's value. Other
 * children of a sequence are its items, in order.
 */
export interface PositionNode {
  offset: number;
  /** Mapping entries: the key's offset and the value's node. */
  entries?: Map<string, { keyOffset: number; value: PositionNode }>;
  items?: PositionNode[];
  /** Keys seen again in this mapping after their first occurrence. */
  duplicates?: { key: string; offset: number; firstOffset: number; value: PositionNode }[];
}

/** A mapping key that appears twice in the same mapping, with the path of the mapping. */
export interface DuplicateKey {
  path: (string | number)[];
  key: string;
  offset: number;
  firstOffset: number;
}

/** Every duplicate key in the recorded tree, in document order; linear in the tree's size. */
export function collectDuplicateKeys(root: PositionNode): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  const walk = (node: PositionNode, path: (string | number)[]): void => {
    for (const d of node.duplicates ?? []) {
      found.push({ path, key: d.key, offset: d.offset, firstOffset: d.firstOffset });
      walk(d.value, [...path, d.key]);
    }
    if (node.entries) for (const [key, entry] of node.entries) walk(entry.value, [...path, key]);
    if (node.items)
      node.items.forEach((item, i) => {
        walk(item, [...path, i]);
      });
  };
  walk(root, []);
  return found.sort((a, b) => a.offset - b.offset);
}

interface Frame {
  offset: number;
  children: { node: PositionNode; key?: { name: string; offset: number } }[];
  pendingKey: { name: string; offset: number } | undefined;
}

/**
 * Returns js-yaml load options whose listener records positions, and a function that yields
 * the recorded root once the load has finished.
 */
export function positionRecorder(text: string): {
  listener: NonNullable<LoadOptions['listener']>;
  root: () => PositionNode;
} {
  const stack: Frame[] = [{ offset: 0, children: [], pendingKey: undefined }];
  const listener = (event: 'open' | 'close', state: State): void => {
    if (event === 'open') {
      stack.push({ offset: skipBlank(text, state.position), children: [], pendingKey: undefined });
      return;
    }
    const frame = stack.pop();
    const parent = stack[stack.length - 1];
    if (frame === undefined || parent === undefined) return;
    const kind = state.kind as string | null; // null when no node was composed
    const node = finish(frame, kind);
    const key = parent.pendingKey;
    if (key !== undefined) {
      // An empty value (`key:` and nothing) is reported where its key is. An alias has no kind
      // either, but it is there to point at.
      const empty = kind === null && text.charCodeAt(frame.offset) !== 0x2a;
      parent.children.push({ node: empty ? { offset: key.offset } : node, key });
      parent.pendingKey = undefined;
    } else if (kind === 'scalar' && isFollowedByColon(text, state.position)) {
      parent.pendingKey = { name: String(state.result), offset: frame.offset };
    } else {
      parent.children.push({ node });
    }
  };
  return {
    listener,
    root: () => {
      const top = stack[0];
      const first = top?.children[0];
      return first === undefined ? { offset: 0 } : first.node;
    },
  };
}

function finish(frame: Frame, kind: string | null): PositionNode {
  // js-yaml composes some nodes twice over (a block sequence item, a compact mapping): the outer
  // event then has the inner one as its only child, at the same offset. Keep the inner one.
  const only = frame.children.length === 1 ? frame.children[0] : undefined;
  if (only !== undefined && only.key === undefined && only.node.offset === frame.offset) {
    return only.node;
  }
  if (kind === 'mapping') {
    const entries = new Map<string, { keyOffset: number; value: PositionNode }>();
    const duplicates: NonNullable<PositionNode['duplicates']> = [];
    for (const { key, node } of frame.children) {
      if (key === undefined) continue;
      // The last occurrence wins, as it does in the parsed document.
      const first = entries.get(key.name);
      if (first !== undefined)
        duplicates.push({
          key: key.name,
          offset: key.offset,
          firstOffset: first.keyOffset,
          value: first.value,
        });
      entries.set(key.name, { keyOffset: key.offset, value: node });
    }
    return duplicates.length > 0
      ? { offset: frame.offset, entries, duplicates }
      : { offset: frame.offset, entries };
  }
  if (kind === 'sequence') {
    return { offset: frame.offset, items: frame.children.map((c) => c.node) };
  }
  return { offset: frame.offset };
}

/**
 * The position of the node at `path` (or of the deepest existing ancestor). With `atKey`, the
 * key of the last path step rather than its value: where an unknown field is reported.
 */
export function locate(
  root: PositionNode,
  path: readonly (string | number)[],
  atKey = false,
): number {
  let node = root;
  for (let i = 0; i < path.length; i++) {
    const step = path[i];
    const last = i === path.length - 1;
    if (node.entries !== undefined) {
      const entry = node.entries.get(String(step));
      if (entry === undefined) return node.offset;
      if (last && atKey) return entry.keyOffset;
      node = entry.value;
    } else if (node.items !== undefined && typeof step === 'number') {
      const item = node.items[step];
      if (item === undefined) return node.offset;
      node = item;
    } else {
      return node.offset;
    }
  }
  return node.offset;
}

function isFollowedByColon(text: string, position: number): boolean {
  let i = position;
  while (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09) i++;
  if (text.charCodeAt(i) !== 0x3a) return false;
  // A scalar that ends right before a colon is a key: in block context `a:b` would have been
  // read as one plain scalar, so the colon can only be the key separator.
  return true;
}

/** Skips spaces, line breaks, comments and a document marker to where a node really starts. */
function skipBlank(text: string, position: number): number {
  let i = position;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
    else if (c === 0x23) {
      while (i < text.length && text.charCodeAt(i) !== 0x0a) i++;
    } else if (c === 0x2d && text.startsWith('---', i) && isBreakOrEnd(text.charCodeAt(i + 3)))
      i += 3;
    else if (c === 0x3a && isBreakOrEnd(text.charCodeAt(i + 1))) i++;
    else if (c === 0x2c) i++;
    else return i;
  }
}

function isBreakOrEnd(c: number): boolean {
  return Number.isNaN(c) || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
