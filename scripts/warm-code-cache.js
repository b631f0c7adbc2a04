// Runs validate, plan and status of examples/vm.spin.yaml (in a temp SPIN_HOME, with stand-ins
// for the guest's kernel and initrd, which the plan checks) through the bundle in this one process, then writes the bundle's V8 code cache (bin/bundle.cjs), which so
// holds the compiled code of what those commands ran. scripts/build-bundle.js runs it, with its
// stdout ignored.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bundle = createRequire(import.meta.url)('../bin/bundle.cjs');
const bin = new URL('../bin/run.cjs', import.meta.url).href;
const example = fileURLToPath(new URL('../examples/vm.spin.yaml', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'spin-warm-'));
process.env.SPIN_HOME = home;
mkdirSync(join(home, 'images', 'guest'), { recursive: true });
for (const file of ['vmlinuz', 'initrd.cpio.gz'])
  writeFileSync(join(home, 'images', 'guest', file), '');
try {
  for (const args of [['validate', example], ['plan', example], ['status']]) {
    await bundle.load().run(bin, args);
    if (process.exitCode !== undefined && process.exitCode !== 0) {
      throw new Error(`spin ${args.join(' ')} exited ${String(process.exitCode)}`);
    }
  }
  bundle.writeCodeCache();
} finally {
  rmSync(home, { recursive: true, force: true });
}
