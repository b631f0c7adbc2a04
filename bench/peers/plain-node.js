// The plain Node peer of bench:apply: makes each directory with mkdirSync, in order, then records
// them in a JSON state file with one fsync — the least a program that remembers what it made does.
// Usage: node plain-node.js <root> <count> <state file>
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { volumeName } from './workload.js';

const [root, countText, stateFile] = process.argv.slice(2);
const count = Number(countText);
const made = [];
for (let i = 0; i < count; i++) {
  const name = volumeName(i);
  mkdirSync(join(root, name), { mode: 0o755 });
  made.push({ id: name, path: name, done: Date.now() });
}
const fd = openSync(stateFile, 'w');
writeSync(fd, JSON.stringify({ volumes: made }));
fsyncSync(fd);
closeSync(fd);
