import { existsSync } from 'node:fs';
import { mkdir, readdir, realpath, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentRoots } from '../../src/agents/agent-roots.js';
import { confinePath, confineRoot } from '../../src/agents/confined-path.js';
import { shellAgent } from '../../src/agents/shell/shell-agent.js';
import { storageAgent } from '../../src/agents/storage/storage-agent.js';
import { SpinError } from '../../src/core/errors.js';
import { testDir } from '../support/spin-cli.js';
import { makeTempHome, type TempHome } from '../support/temp-home.js';

const agent = storageAgent();
let t: TempHome;

beforeEach(async () => {
  t = await makeTempHome();
});
afterEach(() => t.cleanup());

/** The SpinError `promise` rejects with, checked to be path_outside_root naming `path`. */
async function refusedNaming(promise: Promise<unknown>, path: string): Promise<SpinError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SpinError);
  expect(error).toMatchObject({ code: 'path_outside_root', details: { path } });
  expect((error as SpinError).message).toContain(`'${path}'`);
  return error as SpinError;
}

describe('a symlinked agent root', () => {
  it('refuses every storage action under a linked images root; outside stays empty', async () => {
    const outside = await testDir('spin-outside-');
    const images = join(t.home, 'images');
    await symlink(outside, images);
    const error = await refusedNaming(t.run(agent, 'add_volume', { path: 'vol' }), images);
    expect(error.message).toMatch(/symbolic link/);
    expect(error.exitCode).toBe(2);
    // Even a volume made behind spin's back, through the link, is never reached.
    await mkdir(join(outside, 'vol'));
    await refusedNaming(
      t.run(agent, 'create_image', { volume: 'vol', image: 'disk.raw', image_size: 1 }),
      images,
    );
    await refusedNaming(t.run(agent, 'remove_volume', { path: 'vol', force: true }), images);
    expect(await readdir(outside)).toEqual(['vol']);
    expect(await readdir(join(outside, 'vol'))).toEqual([]);
    expect(await readdir(t.home)).toEqual(['images']);
  });

  it('refuses a linked images root with nothing behind it, and creates nothing there', async () => {
    const outside = join(await testDir('spin-outside-'), 'not-yet');
    const images = join(t.home, 'images');
    await symlink(outside, images);
    await refusedNaming(t.run(agent, 'add_volume', { path: 'vol' }), images);
    expect(existsSync(outside)).toBe(false);
  });

  it('refuses linked vms and work roots too', async () => {
    const roots = agentRoots(t.home);
    const outside = await testDir('spin-outside-');
    for (const root of [roots.vms, roots.work]) await symlink(outside, root);
    await refusedNaming(confinePath(roots.vms, 'vm1', 'name'), roots.vms);
    await refusedNaming(confinePath(roots.work, 'a/b', 'relative'), roots.work);
    await refusedNaming(confineRoot(roots.work), roots.work);
    // A shell command with no cwd runs in the work root itself: refused, and nothing runs.
    const marker = join(outside, 'ran');
    const shell = shellAgent({ allowShell: true });
    await refusedNaming(t.run(shell, 'run', { argv: ['touch', marker] }), roots.work);
    expect(await readdir(outside)).toEqual([]);
  });

  it('is refused even when the root was a directory at first use', async () => {
    await t.run(agent, 'add_volume', { path: 'vol' });
    const outside = await testDir('spin-outside-');
    const images = join(t.home, 'images');
    await rename(images, join(outside, 'moved'));
    await symlink(join(outside, 'moved'), images);
    await refusedNaming(
      t.run(agent, 'create_image', { volume: 'vol', image: 'disk.raw', image_size: 1 }),
      images,
    );
    expect(await readdir(join(outside, 'moved', 'vol'))).toEqual([]);
  });

  it('refuses a root that is not a directory', async () => {
    const { images } = agentRoots(t.home);
    await t.run(agent, 'add_volume', { path: 'vol' });
    await rename(images, join(t.home, 'elsewhere'));
    await writeFile(images, 'a file where the root was');
    const error = await refusedNaming(t.run(agent, 'add_volume', { path: 'vol' }), images);
    expect(error.message).toMatch(/not a directory/);
  });
});

describe('a symlinked spin home', () => {
  it('is followed: where the home lives is the user’s choice; roots are made inside it', async () => {
    const real = await testDir('spin-real-home-');
    const home = join(await testDir('spin-link-'), 'home');
    await symlink(real, home);
    const roots = agentRoots(home);
    expect(await confineRoot(roots.images)).toBe(join(await realpath(real), 'images'));
    const vol = await confinePath(roots.images, 'vol', 'name');
    expect(vol).toMatchObject({
      kind: 'missing',
      path: join(await realpath(real), 'images', 'vol'),
    });
    expect(await readdir(real)).toEqual(['images']);
  });
});
