import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { expectEventLines } from '../support/output-schema.js';
import { describe, expect, it } from 'vitest';
import { spin } from '../support/spin-cli.js';
import {
  fake,
  gatedPackage,
  is,
  storagePackage,
  watchDirs,
  applied,
  watchesEndingAfterEachTest,
} from './watch-harness.js';

const watch = watchesEndingAfterEachTest();

describe('spin watch: lifecycle', () => {
  it('the resync repairs drift when no file changed', async () => {
    const d = await watchDirs();
    await writeFile(join(d.dir, 'drift.spin.yaml'), storagePackage('drift', ['a.raw']));
    const w = watch(d, '--interval', '1s');
    await w.waitFor(applied('drift'));
    const image = join(d.home, 'images/drift/a.raw');
    expect(existsSync(image)).toBe(true);
    const from = w.mark();
    await rm(image);
    const repaired = await w.waitFor(
      (e) => is('apply-done', 'drift')(e) && e.reason === 'resync' && e.summary.succeeded === 1,
      { from, what: 'the repair' },
    );
    expect(repaired).toMatchObject({ summary: { failed: 0, unchanged: 1 } });
    expect(existsSync(image)).toBe(true);
    expect(w.events.slice(from).filter(is('loaded'))).toEqual([]);
  });

  it('picks the directory up again after it is removed and recreated', async () => {
    const d = await watchDirs();
    const file = join(d.dir, 'back.spin.yaml');
    await writeFile(file, storagePackage('back', ['a.raw']));
    const w = watch(d);
    await w.waitFor(applied('back'));
    let from = w.mark();
    await rm(d.dir, { recursive: true });
    await w.waitFor(is('missing'), { from });
    await w.waitFor(is('unmanaged', 'back'), { from });
    from = w.mark();
    await mkdir(d.dir);
    await writeFile(file, storagePackage('back', ['a.raw', 'b.raw']));
    await w.waitFor((e) => is('watching')(e) && e.again, { from });
    expect(await w.waitFor(applied('back'), { from })).toMatchObject({
      summary: { succeeded: 1, unchanged: 2 },
    });
    expect(existsSync(join(d.home, 'images/back/b.raw'))).toBe(true);
  });

  it("spin's own writes inside the watched directory trigger nothing", async () => {
    const d = await watchDirs(true);
    const statePath = join(d.dir, 'spin-state.json');
    // The image, named like a package file, lands in the watched directory too.
    await writeFile(join(d.dir, 'own.spin.yaml'), storagePackage('own', ['own.spin.yaml']));
    const w = watch(d, '--state', statePath);
    await w.waitFor(applied('own'));
    expect(existsSync(join(d.home, 'images/own/own.spin.yaml'))).toBe(true);
    expect(existsSync(statePath)).toBe(true);
    // A second package: its apply writes the state, the broker store and the audit log again.
    const from = w.mark();
    await writeFile(join(d.dir, 'two.spin.yaml'), storagePackage('two', ['t.raw']));
    await w.waitFor(applied('two'), { from });
    // And a change to the first afterwards, so anything queued before it would show up first.
    await writeFile(
      join(d.dir, 'own.spin.yaml'),
      storagePackage('own', ['own.spin.yaml', 'x.raw']),
    );
    await w.waitFor(applied('own'), { from });
    const after = w.events.slice(from);
    expect(after.filter(is('invalid'))).toEqual([]);
    expect(after.filter(is('loaded')).map((e) => e.file)).toEqual([
      join(d.dir, 'two.spin.yaml'),
      join(d.dir, 'own.spin.yaml'),
    ]);
    expect(after.filter(is('apply-start')).map((e) => [e.package, e.reason])).toEqual([
      ['two', 'changed'],
      ['own', 'changed'],
    ]);
  });

  it('never overlaps applies of one package, runs packages in parallel, and stops cleanly on SIGTERM', async () => {
    const d = await watchDirs();
    const gate = (name: string): string => join(d.gates, name);
    const fileA = join(d.dir, 'a.spin.yaml');
    await writeFile(fileA, gatedPackage('a', gate('a1')));
    await writeFile(join(d.dir, 'b.spin.yaml'), storagePackage('b', ['b.raw']));
    const w = watch(d, '--allow-shell', '--allow-replace'); // its edit renames an image
    const waitRunning = (from: number) =>
      w.waitFor(
        (e) =>
          e.type === 'reconcile' &&
          e.package === 'a' &&
          e.event.type === 'command' &&
          e.event.id === 'wait' &&
          e.event.phase === 'running',
        { from },
      );
    // `b` is applied from start to end while `a` is held in the middle of its apply.
    await Promise.all([waitRunning(0), w.waitFor(applied('b'))]);
    expect(w.events.filter(is('apply-done', 'a'))).toEqual([]);

    // Two saves while `a` applies: one more apply after it, with the newest content.
    let from = w.mark();
    await writeFile(fileA, gatedPackage('a', gate('a2'), 'y.raw'));
    await w.waitFor(is('loaded', 'a'), { from });
    from = w.mark();
    await writeFile(fileA, gatedPackage('a', gate('a2'), 'z.raw'));
    await w.waitFor(is('loaded', 'a'), { from });
    from = w.mark();
    await writeFile(gate('a1'), '');
    await waitRunning(from);
    const plans = w.events
      .slice(from)
      .flatMap((e) => (e.type === 'reconcile' && e.event.type === 'plan' ? e.event.plans : []));
    expect(plans.map((p) => p.items.find((i) => i.id === 'img')?.command?.params['image'])).toEqual(
      ['z.raw'],
    );

    // The second apply is held on its gate: SIGTERM cancels it and the watch ends cleanly.
    const ended = await w.stop();
    expect(ended.code).toBe(0);
    const sequence = w.events
      .filter((e) => is('apply-start', 'a')(e) || is('apply-done', 'a')(e))
      .map((e) => e.type);
    expect(sequence).toEqual(['apply-start', 'apply-done', 'apply-start', 'apply-done']);
    expect(w.events.filter(is('apply-done', 'a')).at(-1)).toMatchObject({
      summary: { interrupted: true },
    });
    expect(existsSync(join(d.home, 'images/a/y.raw'))).toBe(false);
    expect(w.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'SIGTERM' });
    expect(existsSync(join(d.home, 'state.json.lock'))).toBe(false);
  });

  it('--once reconciles once and exits with the codes of apply', async () => {
    const d = await watchDirs();
    const env = { SPIN_HOME: d.home };
    const once = (...args: string[]) =>
      spin(['watch', d.dir, '--once', '--output', 'json', ...args], { env });
    await writeFile(join(d.dir, 'a.spin.yaml'), storagePackage('a', ['a.raw']));
    const good = await once();
    expect(good.code).toBe(0);
    expect(good.stdout).toContain('"type":"apply-done"');
    expect(existsSync(join(d.home, 'images/a/a.raw'))).toBe(true);

    await writeFile(
      join(d.dir, 'bad.spin.yaml'),
      `package: bad\ncommands:\n  x: { resource: shell, action: run, params: { argv: [node, ${JSON.stringify(fake)}, --fail=3] } }\n`,
    );
    expect((await once('--allow-shell')).code).toBe(1);

    await writeFile(join(d.dir, 'bad.spin.yaml'), 'package: [');
    await rm(join(d.home, 'images/a/a.raw'));
    const invalid = await once();
    expect(invalid.code).toBe(2);
    expect(invalid.stdout).toContain('"type":"invalid"');
    expect(existsSync(join(d.home, 'images/a/a.raw'))).toBe(false); // nothing ran
    await rm(join(d.dir, 'bad.spin.yaml'));

    await writeFile(
      join(d.home, 'state.json.lock'),
      JSON.stringify({
        pid: process.pid,
        host: hostname(),
        since: new Date().toISOString(),
        command: 'test',
      }),
    );
    const locked = await once();
    expect(locked.code).toBe(3);
    // Asked for JSON, the failure is a JSON document too, on stdout with the events.
    const lines = expectEventLines(locked.stdout);
    expect(lines.at(-1)).toMatchObject({
      kind: 'error',
      error: { code: 'lock_held', exit_code: 3 },
    });
    expect(JSON.stringify(lines.at(-1))).toContain(`locked by pid ${String(process.pid)}`);
  });
});
