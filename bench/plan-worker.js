// One measurement in a fresh process: `planner` (load + validate + graph with spin) or `parse`
// (js-yaml's bare load of the same files). Prints {ms, rssMiB, diagnostics}.
import { readFileSync } from 'node:fs';
import jsYaml from 'js-yaml';
import { loadPackages } from '../dist/load/load-packages.js';
import { topologicalOrder } from '../dist/load/topological-order.js';

const [mode, ...files] = process.argv.slice(2);
const start = performance.now();
let diagnostics = 0;
if (mode === 'parse') {
  for (const file of files) jsYaml.load(readFileSync(file, 'utf8'));
} else {
  const result = await loadPackages(files, { maxBytes: 1 << 30 });
  for (const pkg of result.packages) topologicalOrder(pkg.commands);
  diagnostics = result.diagnostics.length;
}
const ms = performance.now() - start;
const rssMiB = process.resourceUsage().maxRSS / 1024;
process.stdout.write(JSON.stringify({ ms, rssMiB, diagnostics }) + '\n');
