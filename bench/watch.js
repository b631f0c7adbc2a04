// npm run bench:watch — from a package file saved to its apply starting, over 50 edits, as
// `spin watch --output json` reports it (measured here, when the apply-start line arrives).
// Each edit waits for the previous apply to finish, so no two edits merge. Printed beside the
// settle time; goal: p50 under settle + 300 ms. SETTLE=200ms EDITS=50 to change them.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const bin = new URL('../bin/run.js', import.meta.url).pathname;
const edits = Number(process.env.EDITS ?? 50);
const settle = process.env.SETTLE ?? '200ms';
const settleMs = settle.endsWith('ms')
  ? Number(settle.slice(0, -2))
  : Number(settle.slice(0, -1)) * 1000;

const root = mkdtempSync(join(tmpdir(), 'spin-bench-watch-'));
const dir = join(root, 'pkgs');
mkdirSync(dir);
const file = join(dir, 'bench.spin.yaml');
const text = (i) => `package: bench
commands:
  vol: { resource: storage, action: add_volume, params: { path: bench } }
  img: { resource: storage, action: create_image, needs: [vol], params: { volume: bench, image: i${i}.raw, image_size: 1 } }
`;
writeFileSync(file, text(0));

const child = spawn(process.execPath, [bin, 'watch', dir, '--output', 'json', '--settle', settle], {
  env: { ...process.env, SPIN_HOME: join(root, 'home') },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const waiting = [];
let pending = '';
child.stdout.on('data', (chunk) => {
  const now = performance.now();
  pending += chunk.toString();
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    const event = JSON.parse(line);
    for (const w of [...waiting]) {
      if (w.match(event)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(now);
      }
    }
  }
});
const next = (match) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no event within 30 s')), 30_000);
    waiting.push({ match, resolve: (t) => (clearTimeout(timer), resolve(t)) });
  });

await next((e) => e.type === 'watching');
await next((e) => e.type === 'apply-done');
const toStart = [];
const toDone = [];
for (let i = 1; i <= edits; i++) {
  const started = next((e) => e.type === 'apply-start' && e.reason === 'changed');
  const done = next((e) => e.type === 'apply-done' && e.reason === 'changed');
  writeFileSync(file, text(i));
  const saved = performance.now();
  toStart.push((await started) - saved);
  toDone.push((await done) - saved);
}
child.kill('SIGTERM');
await new Promise((resolve) => child.on('close', resolve));
rmSync(root, { recursive: true, force: true });

const pct = (xs, p) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
const row = (what, xs) => ({
  what,
  'settle ms': settleMs,
  'p50 ms': pct(xs, 50).toFixed(0),
  'p95 ms': pct(xs, 95).toFixed(0),
  'p50 over settle': (pct(xs, 50) - settleMs).toFixed(0),
  'p95 over settle': (pct(xs, 95) - settleMs).toFixed(0),
});
console.log(`spin watch: ${edits} edits of one package (a volume and a 1 GiB sparse raw image)`);
console.table([row('saved → apply starts', toStart), row('saved → apply done', toDone)]);
const over = pct(toStart, 50) - settleMs;
console.log(
  `goal: p50 (save → apply start) under settle + 300 ms: ${over < 300 ? 'met' : 'NOT met'} (${over.toFixed(0)} ms over)`,
);
