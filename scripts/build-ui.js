// Copies the web view's page (src/ui: static ES modules, no build step of their own) to dist/ui,
// with the browser builds of its libraries vendored from node_modules into dist/ui/vendor:
// preact and its hooks, and htm (dagre lays graphs out in the daemon: src/web/graph-layout.ts). hooks imports the bare name "preact", which a browser
// cannot resolve without an import map (an inline script the page's CSP forbids): it is
// rewritten to the vendored file's relative path.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'dist', 'ui');
const packageDir = (name) => join(root, 'node_modules', name);

rmSync(out, { recursive: true, force: true });
cpSync(join(root, 'src', 'ui'), out, { recursive: true });
mkdirSync(join(out, 'vendor'), { recursive: true });
const vendored = {
  'preact.mjs': join(packageDir('preact'), 'dist', 'preact.mjs'),
  'hooks.mjs': join(packageDir('preact'), 'hooks', 'dist', 'hooks.mjs'),
  'htm.mjs': join(packageDir('htm'), 'dist', 'htm.mjs'),
};
for (const [name, from] of Object.entries(vendored)) {
  const text = readFileSync(from, 'utf8')
    .replace(/from\s*"preact"/g, 'from"./preact.mjs"')
    .replace(/\/\/# sourceMappingURL=.*$/m, '');
  if (/from\s*["'][^./]/.test(text)) throw new Error(`${name} imports a bare module name`);
  writeFileSync(join(out, 'vendor', name), text);
}
console.log(`wrote dist/ui (${Object.keys(vendored).length} vendored modules)`);
