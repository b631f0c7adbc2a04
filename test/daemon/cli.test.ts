import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { brokerPaths } from '../../src/broker/broker-paths.js';
import type { BrokerEvent } from '../../src/broker/broker-types.js';
import { openOwnedBroker } from '../../src/broker/embedded-broker.js';
import { requireBuild, spin } from '../support/cli-process.js';
import { tempHome } from '../support/broker-helpers.js';
import { expectDocument } from '../support/output-schema.js';

describe('spin message and spin daemon, the built binary', () => {
  let home: ReturnType<typeof tempHome>;

  beforeAll(() => {
    requireBuild();
  });
  beforeEach(() => {
    home = tempHome();
  });
  afterEach(async () => {
    try {
      await spin(home.dir, 'daemon', 'stop');
    } finally {
      home.remove();
    }
  });

  it('builds, enqueues and follows a package with no daemon running', async () => {
    const created = await spin(home.dir, 'message', 'new', '--name', 'vm-demo');
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const pkg = created.stdout.trim();
    expect(pkg).toMatch(/^p-[0-9a-f]+$/);

    const add = (...words: string[]) => spin(home.dir, 'message', 'add', pkg, ...words);
    expect((await add('storage', 'add_volume', 'path=test')).stdout.trim()).toBe('c1');
    const image = await add(
      'storage',
      'create_image',
      'volume=test',
      'image=disk.raw',
      'image_size=1',
      '--needs',
      'c1',
    );
    expect(image.stdout.trim()).toBe('c2');
    const vm = JSON.stringify({ name: 'demo', cpus: 1, memory: 256, images: [] });
    const config = await add('emulation', 'write_config', 'id=1', `vm=${vm}`, '--needs=c2');
    expect(config.stdout.trim()).toBe('c3');

    const bad = await add('storage', 'create_image', 'volume=test', 'image=x', 'image_size=big');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("image_size: expected integer, got 'big'");
    const unknown = await add('storage', 'add_volume', 'path=x', 'colour=red');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("has no parameter 'colour'");

    expect(await spin(home.dir, 'message', 'enqueue', pkg)).toMatchObject({
      code: 0,
      stdout: 'enqueued',
    });
    const running = await spin(home.dir, 'message', 'status', pkg);
    expect(running.code).toBe(0);
    expect(running.stdout).toMatch(/c1\s+storage add_volume\s+ready/);
    expect(running.stdout).toMatch(/c2\s+storage create_image\s+waiting/);

    const audit = readFileSync(brokerPaths(home.dir).auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as BrokerEvent);
    const specs = audit.flatMap((e) => (e.type === 'command' && e.spec ? [e.spec] : []));
    expect(specs.map((s) => s.params)).toEqual([
      { path: 'test' },
      { volume: 'test', image: 'disk.raw', image_size: 1 },
      { id: 1, vm: JSON.parse(vm) as unknown },
    ]);

    // A test consumer fails c1 for good: c2 and c3 are skipped, naming c1.
    const broker = await openOwnedBroker({ home: home.dir, sweepIntervalMs: 0 });
    try {
      const consumer = await broker.consumer({ node: 'local', resource: 'storage' });
      const lease = await consumer.lease();
      await consumer.ack(lease!, {
        ok: false,
        error: { code: 'path_outside_root', message: 'no' },
        retryable: false,
      });
    } finally {
      await broker.close();
    }
    const failed = await spin(home.dir, 'message', 'status', pkg);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain(`package ${pkg} (vm-demo): failed`);
    expect(failed.stdout).toMatch(
      /c3\s+emulation write_config\s+skipped\s+needs 'c1', which failed/,
    );
    const json = await spin(home.dir, 'message', 'status', pkg, '--json');
    expect(expectDocument('message-status', json.stdout)).toMatchObject({
      state: 'failed',
      failures: [{ commandId: 'c1', error: { code: 'path_outside_root' } }],
    });
  });

  it('checks what is added as validate does, and says when a package expired', async () => {
    const pkg = (
      await spin(home.dir, 'message', 'new', '--name', 'short', '--ttl', '1s')
    ).stdout.trim();
    const add = (...words: string[]) => spin(home.dir, 'message', 'add', pkg, ...words);
    const unsafe = await add('storage', 'create_image', 'volume=v', 'image=../x', 'image_size=1');
    expect(unsafe.code).toBe(2);
    expect(unsafe.stderr).toContain("image: must not contain '..'");
    const twice = await add('storage', 'add_volume', 'path=a', 'path=b');
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('path is given twice');
    const needs = await add('storage', 'add_volume', 'path=a', '--needs', 'nope');
    expect(needs.code).toBe(2);
    expect(needs.stderr).toContain("--needs names 'nope', not a command of package");
    expect((await add('storage', 'add_volume', 'path=a')).stdout.trim()).toBe('c1');
    // Past its TTL and never enqueued: expired, as status and list say, and enqueue too.
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the TTL must pass
    const status = await spin(home.dir, 'message', 'status', pkg);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain(`package ${pkg} (short): expired`);
    expect((await spin(home.dir, 'message', 'list')).stdout).toMatch(
      new RegExp(`${pkg}\\s+short\\s+expired`),
    );
    expect(await spin(home.dir, 'message', 'enqueue', pkg)).toMatchObject({
      code: 1,
      stdout: 'expired',
    });
    const other = (await spin(home.dir, 'message', 'new', '--name', 'other')).stdout.trim();
    expect((await spin(home.dir, 'message', 'cancel', other)).stdout.trim()).toBe(
      `package ${other}: cancelled`,
    );
    const listed = expectDocument<{ packages: { id: string; state: string }[] }>(
      'message-list',
      (await spin(home.dir, 'message', 'list', '--json')).stdout,
    );
    expect(listed.packages.find((p) => p.id === other)?.state).toBe('cancelled');
  });

  it('starts one daemon per home, talks through it, and stops it', async () => {
    expect((await spin(home.dir, 'daemon', 'status')).code).toBe(4);
    // No built-in agents: the commands stay queued, so status shows them unfinished.
    const started = await spin(home.dir, 'daemon', 'start', '--no-agents');
    expect(started.code).toBe(0);
    const pid = /pid (\d+)/.exec(started.stdout)?.[1];
    expect(pid).toBeDefined();

    const second = await spin(home.dir, 'daemon', 'run');
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(`pid ${pid!} (daemon)`);
    expect((await spin(home.dir, 'daemon', 'start', '--no-agents')).code).toBe(3);

    const pkg = (await spin(home.dir, 'message', 'new')).stdout.trim();
    await spin(home.dir, 'message', 'add', pkg, 'storage', 'add_volume', 'path=v');
    await spin(home.dir, 'message', 'enqueue', pkg);
    const status = await spin(home.dir, 'daemon', 'status');
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`pid ${pid!}`);
    expect(status.stdout).toContain(`${pkg} (${pkg}) enqueued: 1/1 unfinished`);
    expect((await spin(home.dir, 'message', 'status', 'p-missing')).code).toBe(2);

    expect(await spin(home.dir, 'daemon', 'stop')).toMatchObject({ code: 0 });
    expect((await spin(home.dir, 'daemon', 'status')).code).toBe(4);
    expect((await spin(home.dir, 'daemon', 'stop')).code).toBe(4);
    expect(readFileSync(brokerPaths(home.dir).logFile, 'utf8')).toContain('"type":"stopped"');
    // The store outlives the daemon: the package is still there.
    expect((await spin(home.dir, 'message', 'status', pkg)).stdout).toContain('c1');
  });

  it('documents every command with a description and examples', async () => {
    for (const command of ['daemon start', 'daemon run', 'daemon stop', 'daemon status']) {
      const help = await spin(home.dir, ...command.split(' '), '--help');
      expect([command, help.code]).toEqual([command, 0]);
      expect(help.stdout).toContain('EXAMPLES');
    }
    for (const command of ['new', 'add', 'enqueue', 'status', 'cancel', 'list']) {
      const help = await spin(home.dir, 'message', command, '--help');
      expect(help.stdout).toContain('EXAMPLES');
    }
  });
});
