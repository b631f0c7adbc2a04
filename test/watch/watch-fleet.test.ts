import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { PackageView } from '../../src/reconcile/status.js';
import type { ChildProcess } from 'node:child_process';
import { killHard, requireBuild } from '../support/cli-process.js';
import { fileAppears } from '../support/file-appears.js';
import { entriesUntil } from '../support/file-until.js';
import { alive } from '../support/process-alive.js';
import { spin } from '../support/spin-cli.js';
import type { CliRun } from '../support/spin-cli.js';
import { fleetsEndingAfterEachTest } from '../support/test-fleet.js';
import type { TestFleet } from '../support/test-fleet.js';
import {
  applied,
  fake,
  is,
  storagePackage,
  watchDirs,
  watchesEndingAfterEachTest,
} from './watch-harness.js';
import type { WatchDirs } from './watch-harness.js';

const watch = watchesEndingAfterEachTest();
const startFleet = fleetsEndingAfterEachTest();

/** A package of storage commands that run on node `nodea`. */
function onNodeA(name: string, images: string[]): string {
  return storagePackage(name, images, name, 'nodea');
}

/**
 * A fleet with a coordinator and an agent on `nodea` (storage, unless `agentArgs` say), with
 * the homes of the watched directory's test: `root/coord` and `root/a`; the watch's own home
 * (`home`) is the laptop's.
 */
async function fleetFor(
  d: WatchDirs,
  ...agentArgs: string[]
): Promise<{ fleet: TestFleet; coord: string; a: string; coordinator: ChildProcess }> {
  const fleet = await startFleet();
  const [coord, a] = [join(d.root, 'coord'), join(d.root, 'a')];
  const { child: coordinator } = await fleet.coordinator(coord);
  await fleet.agent(a, 'nodea', ...(agentArgs.length > 0 ? agentArgs : ['--resources', 'storage']));
  return { fleet, coord, a, coordinator };
}

/** `spin status --output json` of the coordinator, asked from the laptop. */
async function remoteStatus(fleet: TestFleet, d: WatchDirs): Promise<PackageView[]> {
  const run = await spin(['status', '--output', 'json', '--nats', fleet.nats.url], {
    env: { SPIN_HOME: d.home },
  });
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { packages: PackageView[] }).packages;
}

/** Checks again, each turn of the event loop after a short wait, until `done`; fails after `ms`. */
async function until(done: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${String(ms)} ms passed before ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('spin watch --nats: packages reconciled by a fleet coordinator', () => {
  beforeAll(() => {
    requireBuild();
  });

  it('--once applies every package on the coordinator, and keeps nothing on this machine', async () => {
    const d = await watchDirs();
    const { fleet, coord, a } = await fleetFor(d);
    await writeFile(join(d.dir, 'one.spin.yaml'), onNodeA('one', ['a.raw']));
    await writeFile(join(d.dir, 'two.spin.yaml'), onNodeA('two', []));
    const run = await spin(
      ['watch', d.dir, '--once', '--output', 'plain', '--nats', fleet.nats.url],
      { env: { SPIN_HOME: d.home } },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/one: apply complete: 2 succeeded\./);
    expect(run.stdout).toMatch(/two: apply complete: 1 succeeded\./);
    expect(existsSync(join(a, 'images/one/a.raw'))).toBe(true);
    expect(existsSync(join(a, 'images/two'))).toBe(true);
    const packages = await remoteStatus(fleet, d);
    expect(packages.map((p) => [p.name, p.commands.map((c) => c.status)])).toEqual([
      ['one', ['succeeded', 'succeeded']],
      ['two', ['succeeded']],
    ]);
    expect(existsSync(join(coord, 'state.json'))).toBe(true);
    expect(existsSync(join(d.home, 'state.json'))).toBe(false);
    expect(existsSync(d.home)).toBe(false); // no state, no lock, no broker, no agents here

    // Again: the coordinator's state decides that nothing is left to do.
    const again = await spin(
      ['watch', d.dir, '--once', '--output', 'json', '--nats', fleet.nats.url],
      { env: { SPIN_HOME: d.home } },
    );
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain('"type":"start"');
  });

  it('applies an edit on the coordinator, and resyncs an invalid file with its last good content', async () => {
    const d = await watchDirs();
    const { fleet, coord, a } = await fleetFor(d);
    const file = join(d.dir, 'one.spin.yaml');
    await writeFile(file, onNodeA('one', ['a.raw']));
    const w = watch(d, '--nats', fleet.nats.url, '--interval', '1s');
    await w.waitFor(applied('one'), { what: 'the first apply' });

    let from = w.mark();
    await writeFile(file, onNodeA('one', ['a.raw', 'b.raw']));
    expect(
      await w.waitFor((e) => applied('one')(e) && is('apply-done')(e) && e.reason === 'changed', {
        from,
      }),
    ).toMatchObject({ summary: { succeeded: 1, unchanged: 2 } });
    expect(existsSync(join(a, 'images/one/b.raw'))).toBe(true);
    const [one] = await remoteStatus(fleet, d);
    expect(one?.commands.map((c) => [c.id, c.status])).toEqual([
      ['vol', 'succeeded'],
      ['img0', 'succeeded'],
      ['img1', 'succeeded'],
    ]);

    // Saved invalid: each resync sends the last good text, which has nothing left to do.
    from = w.mark();
    await writeFile(file, 'package: one\ncommands:\n  vol: { resource: storage\n');
    await w.waitFor(is('invalid'), { from, what: 'the invalid file reported' });
    from = w.mark();
    expect(
      await w.waitFor((e) => is('apply-done', 'one')(e) && e.reason === 'resync', { from }),
    ).toMatchObject({ summary: { failed: 0, succeeded: 0, unchanged: 3 } });
    expect(w.events.filter(is('error'))).toEqual([]);

    // The coordinator keeps the files of the runs its state names, not one per resync.
    await entriesUntil(join(coord, 'remote'), (runs) => runs.length === 1);
    expect(existsSync(d.home)).toBe(false);
    expect((await w.stop()).code).toBe(0);
  });

  it('with --prune destroys on the coordinator the package of a removed file', async () => {
    const d = await watchDirs();
    const { fleet, a } = await fleetFor(d);
    await writeFile(join(d.dir, 'keep.spin.yaml'), onNodeA('keep', []));
    await writeFile(join(d.dir, 'gone.spin.yaml'), onNodeA('gone', ['g.raw']));
    const w = watch(d, '--nats', fleet.nats.url, '--prune');
    await Promise.all([w.waitFor(applied('keep')), w.waitFor(applied('gone'))]);
    expect(existsSync(join(a, 'images/gone/g.raw'))).toBe(true);

    const from = w.mark();
    await rm(join(d.dir, 'gone.spin.yaml'));
    expect(await w.waitFor(is('destroyed', 'gone'), { from })).toMatchObject({
      summary: { failed: 0, pruned: 2 },
    });
    expect(existsSync(join(a, 'images/gone'))).toBe(false);
    expect((await remoteStatus(fleet, d)).map((p) => p.name)).toEqual(['keep']);
    expect(w.events.filter(is('error'))).toEqual([]);
  });

  it('tries a destroy again at the next resync when the coordinator was away', async () => {
    const d = await watchDirs();
    const { fleet, coord, a, coordinator } = await fleetFor(d);
    await writeFile(join(d.dir, 'gone.spin.yaml'), onNodeA('gone', []));
    const w = watch(d, '--nats', fleet.nats.url, '--prune', '--interval', '1s');
    await w.waitFor(applied('gone'));
    await killHard(coordinator);
    let from = w.mark();
    await rm(join(d.dir, 'gone.spin.yaml'));
    expect(await w.waitFor(is('error', 'gone'), { from })).toMatchObject({ code: 'unreachable' });
    from = w.mark();
    await fleet.coordinator(coord);
    expect(await w.waitFor(is('destroyed', 'gone'), { from })).toMatchObject({
      summary: { failed: 0, pruned: 1 },
    });
    expect(existsSync(join(a, 'images/gone'))).toBe(false);
    expect(await remoteStatus(fleet, d)).toEqual([]);
  });

  it('reports a coordinator that cannot be reached, keeps watching, and applies once it answers', async () => {
    const d = await watchDirs();
    const fleet = await startFleet(); // NATS only: no coordinator answers yet
    const file = join(d.dir, 'one.spin.yaml');
    await writeFile(file, onNodeA('one', []));

    const once = await spin(['watch', d.dir, '--once', '--nats', fleet.nats.url], {
      env: { SPIN_HOME: d.home },
    });
    expect(once.code).toBe(4);
    expect(once.stderr).toMatch(/one: error: .*no coordinator answers on NATS.*\[unreachable\]/);
    const nowhere = await spin(['watch', d.dir, '--once', '--nats', 'nats://127.0.0.1:1'], {
      env: { SPIN_HOME: d.home },
    });
    expect(nowhere.code).toBe(4);
    expect(nowhere.stderr).toMatch(/NATS at nats:\/\/127\.0\.0\.1:1 does not answer/);

    const w = watch(d, '--nats', fleet.nats.url);
    expect(await w.waitFor(is('error', 'one'))).toMatchObject({ code: 'unreachable' });
    const [coord, a] = [join(d.root, 'coord'), join(d.root, 'a')];
    await fleet.coordinator(coord);
    await fleet.agent(a, 'nodea', '--resources', 'storage');
    const from = w.mark();
    await writeFile(file, onNodeA('one', ['x.raw']));
    await w.waitFor(applied('one'), { from, what: 'the apply once the coordinator answers' });
    expect(existsSync(join(a, 'images/one/x.raw'))).toBe(true);
    expect(existsSync(d.home)).toBe(false);
  });

  it('Ctrl-C cancels the run on the coordinator and exits 0', async () => {
    const d = await watchDirs();
    // A short lease: the agent renews often, and hears of the cancel at its next renewal.
    const { fleet } = await fleetFor(
      d,
      '--resources',
      'storage,shell',
      '--allow-shell',
      '--lease',
      '1s',
    );
    const gate = join(d.gates, 'never');
    const ready = join(d.gates, 'pid');
    await writeFile(
      join(d.dir, 'slow.spin.yaml'),
      [
        'package: slow',
        'commands:',
        `  wait: { resource: shell, action: run, node: nodea, params: { argv: [node, ${JSON.stringify(fake)}, --ready-file=${ready}, --wait-file=${gate}] } }`,
        '  after: { resource: storage, action: add_volume, node: nodea, needs: [wait], params: { path: after } }',
      ].join('\n') + '\n',
    );
    const w = watch(d, '--nats', fleet.nats.url, '--allow-shell');
    const pid = Number(await fileAppears(ready, w.done));
    onTestFinished(() => {
      if (alive(pid)) process.kill(pid, 'SIGKILL'); // never left behind, whatever the test saw
    });
    w.signal('SIGINT');
    const ended: CliRun = await w.done;
    expect(ended.code).toBe(0);
    expect(w.events.filter(is('apply-done', 'slow')).at(-1)).toMatchObject({
      summary: { interrupted: true },
    });
    expect(w.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'SIGINT' });
    const [slow] = await remoteStatus(fleet, d);
    expect(slow?.commands.map((c) => [c.id, c.status, c.reason])).toEqual([
      ['wait', 'cancelled', 'the package was cancelled'],
      ['after', 'cancelled', 'the package was cancelled'],
    ]);
    // On the node, the program is ended (its gate never opened).
    await until(() => !alive(pid), 'the program on nodea ended');
  });

  it('refuses the flags of a local state with --nats (exit 2), as spin apply --nats does', async () => {
    const d = await watchDirs();
    for (const command of [
      ['watch', d.dir],
      ['apply', d.dir],
    ]) {
      const run = await spin(
        [...command, '--nats', 'nats://127.0.0.1:1', '--state', 'x.json', '--reserve-memory', '1G'],
        { env: { SPIN_HOME: d.home } },
      );
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(
        'error: --state, --reserve-memory are for a state and agents on this machine, not with --nats',
      );
    }
  });
});
