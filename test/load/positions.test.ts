import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { LineIndex } from '../../src/load/line-index.js';
import {
  collectDuplicateKeys,
  locate,
  positionRecorder,
  type PositionNode,
} from '../../src/load/yaml-positions.js';

/** Parses `text` as the loader does on its slow path, recording positions. */
function record(text: string): PositionNode {
  const recorder = positionRecorder(text);
  load(text, { json: true, listener: recorder.listener });
  return recorder.root();
}

/** `line:column` of the node at `path` (or of its key, with `atKey`). */
function at(text: string, path: (string | number)[], atKey = false): string {
  const { line, column } = new LineIndex(text).position(locate(record(text), path, atKey));
  return `${String(line)}:${String(column)}`;
}

const block = `package: demo
commands:
  volume:
    resource: storage
    action: add_volume
    params:
      path: data
  image:
    resource: storage
    needs:
      - volume
      - other
`;

describe('yaml positions', () => {
  it('places values and keys of block mappings', () => {
    expect(at(block, ['package'])).toBe('1:10');
    expect(at(block, ['package'], true)).toBe('1:1');
    expect(at(block, ['commands', 'volume'], true)).toBe('3:3');
    expect(at(block, ['commands', 'volume', 'resource'])).toBe('4:15');
    expect(at(block, ['commands', 'volume', 'params', 'path'])).toBe('7:13');
    expect(at(block, ['commands', 'volume', 'params', 'path'], true)).toBe('7:7');
  });

  it('places the items of block sequences', () => {
    expect(at(block, ['commands', 'image', 'needs', 0])).toBe('11:9');
    expect(at(block, ['commands', 'image', 'needs', 1])).toBe('12:9');
  });

  it('falls back to the deepest existing ancestor for a missing field', () => {
    expect(at(block, ['commands', 'image', 'action'])).toBe('9:5');
    expect(at(block, ['commands', 'image', 'needs', 7])).toBe('11:7');
    expect(at(block, ['commands', 'nope', 'params', 'x'])).toBe('3:3');
  });

  it('places the entries of flow mappings and sequences', () => {
    const flow = `package: flow
commands:
  volume: { resource: storage, action: add_volume, params: { path: data } }
  image: { resource: storage, needs: [volume, "other", 'third'] }
`;
    expect(at(flow, ['commands', 'volume', 'action'])).toBe('3:40');
    expect(at(flow, ['commands', 'volume', 'action'], true)).toBe('3:32');
    expect(at(flow, ['commands', 'volume', 'params', 'path'])).toBe('3:68');
    expect(at(flow, ['commands', 'image', 'needs', 0])).toBe('4:39');
    expect(at(flow, ['commands', 'image', 'needs', 1])).toBe('4:47');
    expect(at(flow, ['commands', 'image', 'needs', 2])).toBe('4:56');
  });

  it('places fields of mappings nested in sequences, block and flow', () => {
    const nested = `vm:
  images:
    - volume: a
      path: disk.raw
    - { volume: b, path: cd.iso, cdrom: true }
    -
      volume: c
  ports: [{ host: 8080, guest: 80 }, { host: 22, guest: 22 }]
`;
    expect(at(nested, ['vm', 'images', 0])).toBe('3:7');
    expect(at(nested, ['vm', 'images', 0, 'path'])).toBe('4:13');
    expect(at(nested, ['vm', 'images', 1, 'cdrom'], true)).toBe('5:34');
    expect(at(nested, ['vm', 'images', 1, 'cdrom'])).toBe('5:41');
    expect(at(nested, ['vm', 'images', 2, 'volume'])).toBe('7:15');
    expect(at(nested, ['vm', 'ports', 1, 'host'])).toBe('8:46');
  });

  it('places an empty value at its key', () => {
    const empty = `defaults:
commands:
  volume:
    resource:
    params: { path: }
`;
    expect(at(empty, ['defaults'])).toBe('1:1');
    expect(at(empty, ['commands', 'volume', 'resource'])).toBe('4:5');
    expect(at(empty, ['commands', 'volume', 'params', 'path'])).toBe('5:15');
  });

  it('places an alias at the alias, not at its key', () => {
    const aliases = `base: &base { path: data }
copy: *base
list: [*base]
`;
    expect(at(aliases, ['copy'])).toBe('2:7');
    expect(at(aliases, ['list', 0])).toBe('3:8');
  });

  it('places quoted keys and values, comments and a document marker before them', () => {
    const quoted = `# a comment
---
"package": 'quoted'
commands: # another comment
  "a b": { 'resource': "storage" }
`;
    expect(at(quoted, ['package'], true)).toBe('3:1');
    expect(at(quoted, ['package'])).toBe('3:12');
    expect(at(quoted, ['commands', 'a b'], true)).toBe('5:3');
    expect(at(quoted, ['commands', 'a b', 'resource'])).toBe('5:24');
  });

  it('reports each duplicate key at its second occurrence, in document order', () => {
    const dups = `package: a
commands:
  x: { resource: storage, resource: shell }
  y:
    params: { path: a, path: b, path: c }
package: b
`;
    const root = record(dups);
    const lines = new LineIndex(dups);
    const found = collectDuplicateKeys(root).map((d) => ({
      path: d.path.join('.'),
      key: d.key,
      at: lines.position(d.offset),
      first: lines.position(d.firstOffset).line,
    }));
    expect(found).toEqual([
      { path: 'commands.x', key: 'resource', at: { line: 3, column: 27 }, first: 3 },
      { path: 'commands.y.params', key: 'path', at: { line: 5, column: 24 }, first: 5 },
      { path: 'commands.y.params', key: 'path', at: { line: 5, column: 33 }, first: 5 },
      { path: '', key: 'package', at: { line: 6, column: 1 }, first: 1 },
    ]);
  });

  it('finds no duplicates in a file without them', () => {
    expect(collectDuplicateKeys(record(block))).toEqual([]);
  });
});
