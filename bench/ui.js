// npm run bench:ui — the web view's first paint in headless Chromium (/usr/bin/chromium, as the
// tests use it): from navigation start to the first contentful paint and to the package's graph
// drawn (a performance mark the page sets once the SVG is in the document, and the next frame
// after it; the daemon lays the graph out, once per shape, before the first of these loads), for a package of 300 commands (30 chains of 10) and one of 4, beside the packages
// list and the daemon's static refusal page (the baseline: the same server, no script). Each run
// is a fresh browser context (no cache) carrying the session cookie; cases are interleaved and
// their medians printed. RUNS=15 to change the number of runs.
/* global document -- used inside page.evaluate, in the browser */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const bin = new URL('../bin/run.js', import.meta.url).pathname;
const runs = Number(process.env.RUNS ?? 15);
const home = mkdtempSync(join(tmpdir(), 'spin-bench-ui-'));
const env = { ...process.env, SPIN_HOME: home };

function packageText(name, chains, length) {
  const lines = [`package: ${name}`, 'commands:'];
  for (let c = 0; c < chains; c++) {
    for (let i = 0; i < length; i++) {
      const id = `c${c}-step${i}`;
      const needs = i === 0 ? '' : ` needs: [c${c}-step${i - 1}],`;
      lines.push(
        `  ${id}: {${needs} resource: storage, action: add_volume, params: { path: ${name}-${id} } }`,
      );
    }
  }
  return lines.join('\n') + '\n';
}

for (const [name, chains, length] of [
  ['big', 30, 10],
  ['small', 2, 2],
]) {
  const file = join(home, `${name}.spin.yaml`);
  writeFileSync(file, packageText(name, chains, length));
  const applied = spawnSync(process.execPath, [bin, 'apply', file, '--output', 'plain'], { env });
  if (applied.status !== 0) throw new Error(`apply ${name} failed: ${applied.stderr}`);
}

const daemon = spawn(
  process.execPath,
  [bin, 'daemon', 'run', '--ui', '--ui-port', '0', '--no-agents'],
  {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const base = await new Promise((resolve, reject) => {
  let out = '';
  daemon.stdout.on('data', (chunk) => {
    out += chunk.toString();
    const line = out.split('\n').find((l) => l.includes('"type":"listening"'));
    if (line) resolve(JSON.parse(line).ui);
  });
  daemon.once('exit', (code) => reject(new Error(`the daemon exited with ${code}`)));
});
const login = spawnSync(process.execPath, [bin, 'ui', '--no-open'], { env })
  .stdout.toString()
  .trim();

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const first = await browser.newContext();
await (await first.newPage()).goto(login);
const cookies = await first.cookies();
await first.close();

// The daemon lays a graph out once per shape: the first request for the big package pays it.
const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
const apiTimes = [];
for (let i = 0; i < 2; i++) {
  const started = performance.now();
  const response = await fetch(new URL('api/packages/big', base), { headers: { cookie } });
  await response.json();
  apiTimes.push(performance.now() - started);
}

const cases = [
  { name: 'refusal page (static HTML, the baseline)', path: '', cookie: false },
  { name: 'packages list', path: '#/packages', wait: '[data-package=big]' },
  { name: 'package of 4 commands, graph', path: '#/packages/small', graph: true },
  { name: 'package of 300 commands, graph', path: '#/packages/big', graph: true },
];

async function measure(c) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (c.cookie !== false) await context.addCookies(cookies);
  const page = await context.newPage();
  await page.goto(base + c.path);
  if (c.graph) {
    await page.waitForFunction(() => performance.getEntriesByName('spin-graph-painted').length > 0);
  } else if (c.wait) {
    await page.waitForSelector(c.wait);
  }
  await page.waitForFunction(
    () => performance.getEntriesByName('first-contentful-paint').length > 0,
  );
  const t = await page.evaluate(() => ({
    fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
    rendered: performance.getEntriesByName('spin-graph-rendered')[0]?.startTime,
    painted: performance.getEntriesByName('spin-graph-painted')[0]?.startTime,
    nodes: document.querySelectorAll('[data-command]').length,
  }));
  await context.close();
  return t;
}

const samples = new Map(cases.map((c) => [c.name, []]));
for (let r = 0; r < runs + 1; r++) {
  for (const c of cases) {
    const t = await measure(c);
    if (c.path === '#/packages/big' && t.nodes !== 300)
      throw new Error(`drew ${t.nodes} nodes, not 300`);
    if (r > 0) samples.get(c.name).push(t); // the first round warms up Chromium
  }
}
await browser.close();
daemon.kill('SIGTERM');
await new Promise((resolve) => daemon.once('exit', resolve));
rmSync(home, { recursive: true, force: true });

const median = (values) => {
  const sorted = values.filter((v) => v !== undefined && !Number.isNaN(v)).sort((a, b) => a - b);
  return sorted.length === 0 ? undefined : sorted[Math.floor(sorted.length / 2)];
};
const ms = (v) => (v === undefined ? '' : `${Math.round(v)} ms`);
const baseline = median(samples.get(cases[0].name).map((t) => t.fcp));
console.log(
  `web view first paint, headless Chromium, medians of ${runs} cold loads each (interleaved)\n`,
);
console.log(
  '| page | first contentful paint | graph in the document | graph painted | painted vs baseline FCP |',
);
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const c of cases) {
  const s = samples.get(c.name);
  const fcp = median(s.map((t) => t.fcp));
  const painted = median(s.map((t) => t.painted));
  const ratio = (painted ?? fcp) / baseline;
  console.log(
    `| ${c.name} | ${ms(fcp)} | ${ms(median(s.map((t) => t.rendered)))} | ${ms(painted)} | ${ratio.toFixed(2)}x |`,
  );
}
console.log(
  `\n/api/packages/big: ${ms(apiTimes[0])} the first time (the daemon lays the graph out), ${ms(apiTimes[1])} after (kept per shape)`,
);
const big = median(samples.get(cases[3].name).map((t) => t.painted));
console.log(
  `\ngoal: the 300-command graph painted under 300 ms: ${big < 300 ? 'met' : 'NOT met'} (${ms(big)})`,
);
