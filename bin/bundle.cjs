// Loads spin's bundle (dist/bundle/spin.cjs: spin, oclif and every pure-JS dependency in one
// CommonJS file, built by scripts/build-bundle.js) with V8's code cache, once per process.
//
// Node 20 has no compile cache for modules, and compiling the bundle's code is most of what a
// short command costs. So the bundle runs as a vm.Script given the code V8 produced for it at
// build time (dist/bundle/spin.cjs.cache): V8 checks that the cache comes from the same V8, flags
// and source length, and compiles from source as usual when it does not. The cache's first line
// names the bundle build it belongs to, which the bundle's last line repeats, so a rebuilt bundle
// never runs with the code of another one.
//
// This file is also oclif's command target (package.json `oclif.commands`, `explicit` strategy):
// `commands` maps each command id to its class, each loaded from the bundle on first use.
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const vm = require('node:vm');

const file = join(__dirname, '..', 'dist', 'bundle', 'spin.cjs');
const cacheFile = `${file}.cache`;
const buildLine = /\n\/\/ spin-bundle ([0-9a-f]+)\n$/;

let script;
let bundle;

/** The code cache of the bundle whose source is `source`; undefined when it has none. */
function cachedData(source) {
  let data;
  try {
    data = readFileSync(cacheFile);
  } catch {
    return undefined;
  }
  const newline = data.indexOf(10);
  const build = buildLine.exec(source.slice(-100));
  if (newline < 0 || build === null || data.toString('latin1', 0, newline) !== build[1]) {
    return undefined;
  }
  return data.subarray(newline + 1);
}

/** The bundle's exports: `run(dir)` (oclif's execute) and `commands`. */
function load() {
  if (bundle !== undefined) return bundle;
  let source;
  try {
    // The build makes the bundle ASCII, which latin1 reads without decoding.
    source = readFileSync(file, 'latin1');
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
    throw new Error(`${file} is missing: build spin first (npm run build)`);
  }
  // The wrapper opens on the bundle's first line, so stack traces give the bundle's line numbers.
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  script = new vm.Script(wrapped, { filename: file, cachedData: cachedData(source) });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  bundle = module.exports;
  return bundle;
}

/**
 * Writes the code V8 compiled for the bundle so far (the whole script, and every function that
 * ran) as its code cache. The build calls it after running a few commands.
 */
function writeCodeCache() {
  if (script === undefined) throw new Error('the bundle is not loaded');
  const build = buildLine.exec(readFileSync(file, 'latin1').slice(-100));
  if (build === null) throw new Error(`${file} does not end with its build line`);
  writeFileSync(
    cacheFile,
    Buffer.concat([Buffer.from(`${build[1]}\n`), script.createCachedData()]),
  );
}

module.exports = {
  load,
  writeCodeCache,
  get commands() {
    return load().commands;
  },
};
