#!/usr/bin/env node
// Entry point of the `spin` CLI. `--version` is answered before anything else loads, because CI
// calls spin hundreds of times and a bare version check should cost little more than starting
// node. Everything else runs from the bundle (dist/bundle/spin.cjs, loaded by bundle.cjs).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version')) {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(
    `spin/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`,
  );
} else {
  await createRequire(import.meta.url)('./bundle.cjs')
    .load()
    .run(import.meta.url);
}
