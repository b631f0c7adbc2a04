#!/usr/bin/env node
// Entry point of the `spin` command (package.json `bin`). It is CommonJS because node starts a
// CommonJS entry ~6 ms sooner than an ES module. `--version` is answered before anything else
// loads, because CI calls spin hundreds of times and a bare version check should cost little
// more than starting node; everything else runs from the bundle (bundle.cjs).
'use strict';

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version')) {
  const { version } = require('../package.json');
  process.stdout.write(
    `spin/${version} ${process.platform}-${process.arch} node-${process.version}\n`,
  );
} else {
  // oclif finds package.json from this file's URL.
  void require('./bundle.cjs').load().run(require('node:url').pathToFileURL(__filename).href);
}
