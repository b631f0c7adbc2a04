import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpinError } from '../../src/core/errors.js';
import { processAlive, tempPathFor, tempWriterOf } from '../../src/agents/fs-util.js';
import { storageAgent } from '../../src/agents/storage/storage-agent.js';
import { killedWriter } from '../support/killed-writer.js';
import { makeTempHome, type TempHome } from '../support/temp-home.js';

const agent = storageAgent();
const gib = 1024 ** 3;
let t: TempHome;
let images: string;

beforeEach(async () => {
  t = await makeTempHome();
  images = join(t.home, 'images');
});
afterEach(() => t.cleanup());

function qemuInfo(path: string): Record<string, unknown> {
  return JSON.parse(
    execFileSync('qemu-img', ['info', '--output=json', path], { encoding: 'utf8' }),
  ) as Record<string, unknown>;
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<SpinError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SpinError);
  expect((error as SpinError).code).toBe(code);
  return error as SpinError;
}

describe('storage volumes', () => {
  it('adds a volume idempotently and observes it', async () => {
    expect((await t.run(agent, 'add_volume', { path: 'test' })).output).toBe('volume test created');
    expect((await t.run(agent, 'add_volume', { path: 'test' })).output).toBe('volume test exists');
    expect((await stat(join(images, 'test'))).isDirectory()).toBe(true);
    const seen = await agent.actions.get('add_volume')!.observe!({ path: 'test' }, t.ctx());
    expect(seen).toEqual({ present: true, details: { entries: 0 } });
    expect(agent.actions.get('add_volume')!.inverseParams!({ path: 'test' })).toEqual({
      path: 'test',
    });
  });

  it('refuses to remove a non-empty volume unless forced; removing twice succeeds', async () => {
    await t.run(agent, 'add_volume', { path: 'v' });
    await t.run(agent, 'create_image', { volume: 'v', image: 'a.raw', image_size: 1 });
    const error = await rejectsWith(t.run(agent, 'remove_volume', { path: 'v' }), 'not_empty');
    expect(error.retryable).toBe(false);
    expect(existsSync(join(images, 'v', 'a.raw'))).toBe(true);
    expect((await t.run(agent, 'remove_volume', { path: 'v', force: true })).output).toContain(
      'removed',
    );
    expect((await t.run(agent, 'remove_volume', { path: 'v' })).output).toBe('volume v absent');
    expect(existsSync(join(images, 'v'))).toBe(false);
  });
});

describe('storage images', () => {
  beforeEach(() => t.run(agent, 'add_volume', { path: 'vol' }));

  it('creates a sparse raw image of exactly image_size GiB, idempotently', async () => {
    const params = { volume: 'vol', image: 'disk.raw', image_size: 2 };
    expect((await t.run(agent, 'create_image', params)).output).toContain('created');
    expect((await t.run(agent, 'create_image', params)).output).toContain('exists');
    const s = await stat(join(images, 'vol', 'disk.raw'));
    expect(s.size).toBe(2 * gib);
    expect(s.blocks * 512).toBeLessThan(1024 * 1024);
    const info = qemuInfo(join(images, 'vol', 'disk.raw'));
    expect(info['format']).toBe('raw');
    expect(info['virtual-size']).toBe(2 * gib);
    // Another format is another image; a smaller size would lose data; a larger one grows it.
    await rejectsWith(
      t.run(agent, 'create_image', { ...params, format: 'qcow2' }),
      'already_exists',
    );
    await rejectsWith(t.run(agent, 'create_image', { ...params, image_size: 1 }), 'invalid_input');
    expect((await t.run(agent, 'create_image', { ...params, image_size: 3 })).output).toContain(
      'grown to 3 GiB',
    );
    expect(qemuInfo(join(images, 'vol', 'disk.raw'))['virtual-size']).toBe(3 * gib);
    expect(await readdir(join(images, 'vol'))).toEqual(['disk.raw']);
  });

  it('creates qcow2 with qemu-img, grows it, refuses to shrink unless forced', async () => {
    const params = { volume: 'vol', image: 'disk.qcow2', image_size: 1, format: 'qcow2' };
    await t.run(agent, 'create_image', params);
    expect((await t.run(agent, 'create_image', params)).output).toContain('exists');
    const path = join(images, 'vol', 'disk.qcow2');
    expect(qemuInfo(path)).toMatchObject({ format: 'qcow2', 'virtual-size': gib });
    expect(
      (await t.run(agent, 'resize_image', { volume: 'vol', image: 'disk.qcow2', image_size: 3 }))
        .output,
    ).toContain('grown');
    expect(qemuInfo(path)['virtual-size']).toBe(3 * gib);
    expect(
      (await t.run(agent, 'resize_image', { volume: 'vol', image: 'disk.qcow2', image_size: 3 }))
        .output,
    ).toContain('is 3 GiB');
    await rejectsWith(
      t.run(agent, 'resize_image', { volume: 'vol', image: 'disk.qcow2', image_size: 2 }),
      'invalid_input',
    );
    expect(qemuInfo(path)['virtual-size']).toBe(3 * gib);
    await t.run(agent, 'resize_image', {
      volume: 'vol',
      image: 'disk.qcow2',
      image_size: 2,
      force: true,
    });
    expect(qemuInfo(path)['virtual-size']).toBe(2 * gib);
  });

  it('resizes raw images and keeps them sparse; shrink refused without force', async () => {
    await t.run(agent, 'create_image', { volume: 'vol', image: 'r.raw', image_size: 1 });
    await t.run(agent, 'resize_image', { volume: 'vol', image: 'r.raw', image_size: 4 });
    const s = await stat(join(images, 'vol', 'r.raw'));
    expect(s.size).toBe(4 * gib);
    expect(s.blocks * 512).toBeLessThan(1024 * 1024);
    await rejectsWith(
      t.run(agent, 'resize_image', { volume: 'vol', image: 'r.raw', image_size: 1 }),
      'invalid_input',
    );
    expect((await stat(join(images, 'vol', 'r.raw'))).size).toBe(4 * gib);
  });

  it('deletes images idempotently', async () => {
    await t.run(agent, 'create_image', { volume: 'vol', image: 'd.raw', image_size: 1 });
    expect(
      (await t.run(agent, 'delete_image', { volume: 'vol', image: 'd.raw' })).output,
    ).toContain('deleted');
    expect(
      (await t.run(agent, 'delete_image', { volume: 'vol', image: 'd.raw' })).output,
    ).toContain('absent');
  });

  it('fails with not_found when the volume is missing', async () => {
    await rejectsWith(
      t.run(agent, 'create_image', { volume: 'nope', image: 'x.raw', image_size: 1 }),
      'not_found',
    );
    expect(existsSync(join(images, 'nope'))).toBe(false);
  });

  it('copies an image exactly and sparsely, idempotently', async () => {
    await t.run(agent, 'create_image', { volume: 'vol', image: 'src.raw', image_size: 1 });
    const data = Buffer.from('hello from the first sector');
    execFileSync(
      'dd',
      ['of=' + join(images, 'vol', 'src.raw'), 'bs=1', 'seek=4096', 'conv=notrunc', 'status=none'],
      { input: data },
    );
    await t.run(agent, 'add_volume', { path: 'other' });
    const params = {
      from_volume: 'vol',
      from_image: 'src.raw',
      to_volume: 'other',
      to_image: 'copy.raw',
    };
    expect((await t.run(agent, 'copy_image', params)).output).toContain('copied');
    expect((await t.run(agent, 'copy_image', params)).output).toContain('exists');
    const copy = join(images, 'other', 'copy.raw');
    const s = await stat(copy);
    expect(s.size).toBe(gib);
    expect(s.blocks * 512).toBeLessThan(4 * 1024 * 1024);
    execFileSync('cmp', [join(images, 'vol', 'src.raw'), copy]);
    expect(await readdir(join(images, 'other'))).toEqual(['copy.raw']);
  });

  it('leaves no partial copy when the copy is aborted midway', async () => {
    await t.run(agent, 'create_image', { volume: 'vol', image: 'big.raw', image_size: 1 });
    const controller = new AbortController();
    const ctx = {
      ...t.ctx(controller.signal),
      progress: () => {
        controller.abort();
      },
    };
    const copy = agent.actions
      .get('copy_image')!
      .run(
        { from_volume: 'vol', from_image: 'big.raw', to_volume: 'vol', to_image: 'copy.raw' },
        ctx,
      );
    const error = await rejectsWith(copy, 'cancelled');
    expect(error.retryable).toBe(true);
    expect(await readdir(join(images, 'vol'))).toEqual(['big.raw']);
  });
});

describe('storage leftovers of a writer killed mid-write', () => {
  const leftovers = [
    '.spin-tmp-{pid}-0123456789ab-disk.raw',
    '.spin-tmp-{pid}-ba9876543210-c.qcow2',
  ];

  it('names temporary files with the writer pid, and knows no other name for one', () => {
    expect(tempWriterOf(basename(tempPathFor(join(images, 'vol', 'disk.raw'))))).toBe(process.pid);
    for (const name of ['.spin-tmp-notes', '.spin-tmp-12-xyz-a', '.spin-tmp-0-0123456789ab-a']) {
      expect(tempWriterOf(name)).toBeUndefined();
    }
  });

  it('does not make remove_volume fail: they are removed with the volume', async () => {
    await t.run(agent, 'add_volume', { path: 'v' });
    const dead = await killedWriter(join(images, 'v'), leftovers);
    expect(processAlive(dead)).toBe(false);
    expect(await readdir(join(images, 'v'))).toHaveLength(2);
    expect((await t.run(agent, 'remove_volume', { path: 'v' })).output).toBe('volume v removed');
    expect(existsSync(join(images, 'v'))).toBe(false);
  });

  it('are removed by the next action on the volume', async () => {
    await t.run(agent, 'add_volume', { path: 'v' });
    await killedWriter(join(images, 'v'), leftovers);
    await t.run(agent, 'create_image', { volume: 'v', image: 'disk.raw', image_size: 1 });
    expect(await readdir(join(images, 'v'))).toEqual(['disk.raw']);
    expect(t.lines.filter((l) => l.includes('left by an interrupted write'))).toHaveLength(2);
  });

  it("leaves a user's hidden files and a live writer's file alone", async () => {
    await t.run(agent, 'add_volume', { path: 'v' });
    const live = `.spin-tmp-${String(process.pid)}-0123456789ab-disk.raw`; // this process writes it
    const mine = ['.spin-tmp-notes', '.hidden', live];
    for (const name of mine) await writeFile(join(images, 'v', name), 'mine');
    await killedWriter(join(images, 'v'), leftovers);
    const error = await rejectsWith(t.run(agent, 'remove_volume', { path: 'v' }), 'not_empty');
    expect(error.details).toEqual({ entries: 3 });
    await t.run(agent, 'add_volume', { path: 'v' });
    expect((await readdir(join(images, 'v'))).sort()).toEqual([...mine].sort());
    for (const name of mine) expect(await readFile(join(images, 'v', name), 'utf8')).toBe('mine');
  });
});

// A small tmpfs makes a real full disk. Mounting it needs root, which CI has: this test runs
// everywhere, and says plainly what is missing where it cannot.
describe('storage on a full disk (tmpfs, needs root)', () => {
  it('fails a copy with no_space and leaves nothing half-made', async () => {
    expect(
      process.getuid?.(),
      'this test mounts a 10 MiB tmpfs as a full disk and must run as root (CI does)',
    ).toBe(0);
    await mkdir(images, { recursive: true });
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=10m', 'tmpfs', images], {
      encoding: 'utf8',
    });
    expect(
      mounted.status,
      `mount -t tmpfs failed (no CAP_SYS_ADMIN in a container?): ${mounted.stderr}${String(mounted.error ?? '')}`,
    ).toBe(0);
    try {
      await t.run(agent, 'add_volume', { path: 'vol' });
      await t.run(agent, 'create_image', { volume: 'vol', image: 'src.raw', image_size: 1 });
      execFileSync('dd', [
        'if=/dev/urandom',
        `of=${join(images, 'vol', 'src.raw')}`,
        'bs=1M',
        'count=6',
        'conv=notrunc',
        'status=none',
      ]);
      const params = {
        from_volume: 'vol',
        from_image: 'src.raw',
        to_volume: 'vol',
        to_image: 'copy.raw',
      };
      const error = await rejectsWith(t.run(agent, 'copy_image', params), 'no_space');
      expect(error.message).toMatch(/No space left/);
      expect(error.retryable).toBe(true);
      expect(await readdir(join(images, 'vol'))).toEqual(['src.raw']);
      // Fill what is left (dd exits non-zero when the disk is full, by design).
      spawnSync('dd', [
        'if=/dev/zero',
        `of=${join(images, 'fill')}`,
        'bs=1M',
        'count=16',
        'status=none',
      ]);
      const qcow = { volume: 'vol', image: 'q.qcow2', image_size: 1, format: 'qcow2' };
      await rejectsWith(t.run(agent, 'create_image', qcow), 'no_space');
      expect(await readdir(join(images, 'vol'))).toEqual(['src.raw']);
    } finally {
      execFileSync('umount', [images]);
    }
  });
});

describe('storage path confinement', () => {
  it('refuses traversal, absolute and nested names', async () => {
    for (const path of ['..', '../x', '/etc', 'a/b', '.', 'a\\b', 'x\u0001']) {
      await rejectsWith(t.run(agent, 'add_volume', { path }), 'path_outside_root');
    }
    await t.run(agent, 'add_volume', { path: 'vol' });
    for (const image of ['../../etc/passwd', '../vol2', '/tmp/x']) {
      await rejectsWith(
        t.run(agent, 'create_image', { volume: 'vol', image, image_size: 1 }),
        'path_outside_root',
      );
    }
    expect(await readdir(images)).toEqual(['vol']);
  });

  it('refuses a volume that is a symlink leading out, without touching the target', async () => {
    const outside = join(t.home, 'outside');
    await mkdir(outside);
    await mkdir(images, { recursive: true });
    await symlink(outside, join(images, 'evil'));
    await rejectsWith(
      t.run(agent, 'create_image', { volume: 'evil', image: 'x.raw', image_size: 1 }),
      'path_outside_root',
    );
    await rejectsWith(
      t.run(agent, 'remove_volume', { path: 'evil', force: true }),
      'path_outside_root',
    );
    expect(await readdir(outside)).toEqual([]);
    expect(existsSync(join(images, 'evil'))).toBe(true);
  });

  it('refuses an image that is a symlink, even one pointing inside the root', async () => {
    await t.run(agent, 'add_volume', { path: 'vol' });
    const secret = join(t.home, 'secret');
    await writeFile(secret, 'do not touch');
    await symlink(secret, join(images, 'vol', 'out.raw'));
    await t.run(agent, 'create_image', { volume: 'vol', image: 'in.raw', image_size: 1 });
    await symlink('in.raw', join(images, 'vol', 'alias.raw'));
    await rejectsWith(
      t.run(agent, 'delete_image', { volume: 'vol', image: 'out.raw' }),
      'path_outside_root',
    );
    await rejectsWith(
      t.run(agent, 'resize_image', { volume: 'vol', image: 'alias.raw', image_size: 2 }),
      'path_outside_root',
    );
    await rejectsWith(
      t.run(agent, 'copy_image', {
        from_volume: 'vol',
        from_image: 'out.raw',
        to_volume: 'vol',
        to_image: 'stolen.raw',
      }),
      'path_outside_root',
    );
    expect(existsSync(join(images, 'vol', 'stolen.raw'))).toBe(false);
    expect((await stat(secret)).size).toBe(12);
  });
});
