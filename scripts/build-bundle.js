// Bundles the CLI into dist/bundle/spin.cjs — spin's src, @oclif/core and every pure-JS
// dependency in one CommonJS file — and warms its V8 code cache, so that a command starts without
// resolving, reading and compiling hundreds of modules (bin/bundle.cjs loads it).
//
// - typescript stays outside: oclif asks for it only to run a CLI from its TypeScript source
//   (spin turns that off); so does better-sqlite3's native addon (its JavaScript is bundled).
// - Each command is required on first use (the entry's `commands` getters), so a command
//   initialises only the modules it imports.
// - `import.meta.url` in spin's sources becomes the URL of the same module in dist/ (tsc's output),
//   so files found next to a module — the precompiled validators — are found from the bundle too.
// - dist/bundle/spin.cjs.map maps the bundle back to src/ (src/cli/mapped-stack.ts uses it for
//   the stack traces of internal errors).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const outdir = join(root, 'dist', 'bundle');
const outfile = join(outdir, 'spin.cjs');

/** Every command file below src/commands, by oclif command id (`daemon:run`). */
function commandFiles(dir = join(src, 'commands'), topics = []) {
  const found = {};
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) Object.assign(found, commandFiles(path, [...topics, entry.name]));
    else if (entry.name.endsWith('.ts'))
      found[[...topics, entry.name.slice(0, -3)].join(':')] = path;
  }
  return found;
}

const commands = commandFiles();
const getters = Object.entries(commands)
  .sort(([a], [b]) => a.localeCompare(b))
  .map(
    ([id, path]) =>
      `  get ${JSON.stringify(id)}() { return require(${JSON.stringify(path)}).default; },`,
  );
// oclif by its parts, as the commands import it: its index also checks the node version, with
// semver, ~3 ms that no command needs.
const entry = `const { execute } = require('@oclif/core/execute');
const { settings } = require('@oclif/core/settings');

/**
 * Runs the CLI with \`args\` (default: the process's). \`dir\` is the URL of its entry (bin/run.cjs),
 * from which oclif finds package.json.
 */
exports.run = async (dir, args) => {
  settings.enableAutoTranspile = false;
  await execute({ dir, args });
};
exports.commands = {
${getters.join('\n')}
};
`;

/** Rewrites `import.meta.url` in spin's sources to the URL of the module's tsc output. */
const distUrl = {
  name: 'dist-import-meta-url',
  setup(bundle) {
    bundle.onLoad({ filter: /\.ts$/ }, (args) => {
      let contents = readFileSync(args.path, 'utf8');
      if (relative(src, args.path).startsWith('..')) return undefined;
      if (contents.includes('import.meta.url')) {
        const dist = join(root, 'dist', relative(src, args.path)).replace(/\.ts$/, '.js');
        contents = contents.replaceAll(
          'import.meta.url',
          `__spinDistUrl(${JSON.stringify(relative(outdir, dist))})`,
        );
      }
      return { contents, loader: 'ts' };
    });
  },
};

/**
 * oclif sorts the command ids with localeCompare each time it starts, and the first call loads
 * ICU's collator: ~5 ms, a tenth of node's own start. spin's ids are lowercase ASCII, which sort
 * the same by code unit (checked here), so the bundle compares them so.
 */
const asciiIds = {
  name: 'oclif-ascii-id-sort',
  setup(bundle) {
    const ids = Object.keys(commands);
    const byLocale = [...ids].sort((a, b) => a.localeCompare(b));
    const byCodeUnit = [...ids].sort();
    if (ids.some((id) => !/^[a-z:-]+$/.test(id)) || byLocale.join() !== byCodeUnit.join()) {
      throw new Error(`command ids that do not sort the same by code unit: ${ids.join(', ')}`);
    }
    bundle.onLoad({ filter: /@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/ }, (args) => {
      const sort = '.sort((a, b) => a.id.localeCompare(b.id));';
      const contents = readFileSync(args.path, 'utf8');
      if (!contents.includes(sort)) throw new Error(`${args.path} no longer sorts ids as expected`);
      return {
        contents: contents.replace(
          sort,
          '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));',
        ),
        loader: 'js',
      };
    });
  },
};

/**
 * better-sqlite3's JavaScript is bundled too (requiring its 15 files costs ~5 ms); only its addon
 * stays a file. better-sqlite3 finds the addon with `bindings`, which looks for the package's
 * root from the caller's file name, the bundle's; so it is given the root, as `bindings` allows.
 */
const sqliteAddon = {
  name: 'better-sqlite3-addon',
  setup(bundle) {
    bundle.onLoad({ filter: /better-sqlite3[\\/]lib[\\/]database\.js$/ }, (args) => {
      const load = "require('bindings')('better_sqlite3.node')";
      const contents = readFileSync(args.path, 'utf8');
      if (!contents.includes(load)) throw new Error(`${args.path} no longer loads its addon so`);
      const root = "require('node:path').dirname(require.resolve('better-sqlite3/package.json'))";
      return {
        contents: contents.replace(
          load,
          `require('bindings')({ bindings: 'better_sqlite3.node', module_root: ${root} })`,
        ),
        loader: 'js',
      };
    });
  },
};

rmSync(outdir, { recursive: true, force: true });
const result = await build({
  stdin: { contents: entry, resolveDir: src, sourcefile: 'bundle-entry.js', loader: 'js' },
  outfile,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // The NATS client is loaded from node_modules on NATS paths only, so that no other command
  // parses it (~350 KiB).
  external: ['typescript', 'better-sqlite3/package.json', '@nats-io/*'],
  banner: {
    js: "const __spinDistUrl = (path) => require('node:url').pathToFileURL(require('node:path').join(__dirname, path)).href;",
  },
  sourcemap: true,
  sourcesContent: false,
  plugins: [distUrl, asciiIds, sqliteAddon],
  logLevel: 'warning',
  metafile: true,
});

// The bundle runs in a vm.Script without a dynamic import callback, so an import() left in it
// fails when it runs. These stay because spin never reaches them: oclif's module loader imports
// ESM commands and plugins (spin's commands are in the bundle), its ts-path registers TypeScript
// loaders (turned off), and lilconfig reads config files when package.json has no `oclif`
// section (spin's has one).
const importing = new Set([
  '@oclif/core/lib/module-loader.js',
  '@oclif/core/lib/config/ts-path.js',
  'lilconfig/src/index.js',
]);
// esbuild escapes what is not ASCII in strings, templates and identifiers, but not in comments
// and regular expression literals; escaped there too, the file is ASCII, which bin/bundle.cjs
// reads as latin1, without decoding, into a one-byte string that V8 scans faster.
const code = readFileSync(outfile, 'utf8').replace(
  /[\u0080-\uffff]/g,
  (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
);
let module = '';
for (const line of code.split('\n')) {
  if (line.startsWith('// ')) module = line.slice(3);
  else if (/(^|[^\w.$])import\(/.test(line) && ![...importing].some((m) => module.endsWith(m))) {
    throw new Error(`${module} keeps an import() in the bundle: ${line.trim()}`);
  }
}

const buildId = createHash('sha256').update(code).digest('hex').slice(0, 16);
writeFileSync(outfile, `${code}\n// spin-bundle ${buildId}\n`);

// Warm the code cache: run a few commands through the bundle and keep what V8 compiled.
const warm = spawnSync(process.execPath, [join(root, 'scripts', 'warm-code-cache.js')], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (warm.status !== 0)
  throw new Error(`warming the code cache failed (exit ${String(warm.status)})`);

const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;
const inputs = Object.keys(result.metafile.inputs).length;
console.log(`bundled ${String(inputs)} modules into dist/bundle/spin.cjs (${kib(code.length)})`);
