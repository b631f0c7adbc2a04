import { existsSync } from 'node:fs';
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spin } from '../support/spin-cli.js';
import {
  is,
  renameSave,
  storagePackage,
  watchDirs,
  applied,
  watchesEndingAfterEachTest,
} from './watch-harness.js';

const watch = watchesEndingAfterEachTest();

async function stateOf(home: string): Promise<{
  packages: Record<string, { commands: Record<string, { params: Record<string, unknown> }> }>;
}> {
  return JSON.parse(await readFile(join(home, 'state.json'), 'utf8')) as Awaited<
    ReturnType<typeof stateOf>
  >;
}

describe('spin watch: files', () => {
  it('applies a created file, an edit and a rename-save; a deleted file is left unmanaged', async () => {
    const d = await watchDirs();
    const w = watch(d);
    await w.waitFor(is('watching'));
    const file = join(d.dir, 'one.spin.yaml');
    await writeFile(file, storagePackage('one', ['a.raw']));
    const first = await w.waitFor(applied('one'), { what: 'the first apply' });
    expect(first).toMatchObject({ reason: 'changed', summary: { succeeded: 2 } });
    expect(existsSync(join(d.home, 'images/one/a.raw'))).toBe(true);

    let from = w.mark();
    await writeFile(file, storagePackage('one', ['a.raw', 'b.raw']));
    expect(await w.waitFor(applied('one'), { from })).toMatchObject({
      summary: { succeeded: 1, unchanged: 2 },
    });
    expect(existsSync(join(d.home, 'images/one/b.raw'))).toBe(true);

    from = w.mark();
    await renameSave(file, storagePackage('one', ['a.raw', 'b.raw', 'c.raw']));
    expect(await w.waitFor(applied('one'), { from })).toMatchObject({
      summary: { succeeded: 1, unchanged: 3 },
    });
    expect(existsSync(join(d.home, 'images/one/c.raw'))).toBe(true);
    // The rename-save is one change, never a removal then an addition.
    expect(w.events.slice(from).filter((e) => e.type === 'unmanaged')).toEqual([]);
    expect(w.events.slice(from).filter(is('apply-start'))).toHaveLength(1);

    from = w.mark();
    await rm(file);
    expect(await w.waitFor(is('unmanaged', 'one'), { from })).toMatchObject({ file });
    expect(existsSync(join(d.home, 'images/one/c.raw'))).toBe(true);
    expect(Object.keys((await stateOf(d.home)).packages)).toEqual(['one']);
  });

  it('with --prune destroys the package of a deleted file, and undoes commands removed from a file', async () => {
    const d = await watchDirs();
    const file = join(d.dir, 'gone.spin.yaml');
    await writeFile(file, storagePackage('gone', ['a.raw', 'b.raw']));
    const w = watch(d, '--prune');
    expect(await w.waitFor(applied('gone'))).toMatchObject({ reason: 'initial' });

    let from = w.mark();
    await writeFile(file, storagePackage('gone', ['a.raw']));
    expect(await w.waitFor(applied('gone'), { from })).toMatchObject({ summary: { pruned: 1 } });
    expect(existsSync(join(d.home, 'images/gone/b.raw'))).toBe(false);

    from = w.mark();
    await rm(file);
    const destroyed = await w.waitFor(is('destroyed', 'gone'), { from });
    expect(destroyed).toMatchObject({ summary: { pruned: 2, failed: 0 } });
    expect(existsSync(join(d.home, 'images/gone'))).toBe(false);
    expect((await stateOf(d.home)).packages).toEqual({});
  });

  it('a storm of 100 rapid saves ends at the final content with far fewer applies', async () => {
    const d = await watchDirs();
    const file = join(d.dir, 'storm.spin.yaml');
    await writeFile(file, storagePackage('storm', ['s0.raw']));
    const w = watch(d, '--allow-replace'); // its edits rename an image: a replace;
    await w.waitFor(applied('storm'));
    const from = w.mark();
    for (let i = 1; i <= 100; i++)
      await writeFile(file, storagePackage('storm', [`s${String(i)}.raw`]));
    const final = join(d.home, 'images/storm/s100.raw');
    await w.waitFor((e) => applied('storm')(e) && existsSync(final), { from, what: 's100.raw' });
    const starts = w.events.slice(from).filter(is('apply-start', 'storm'));
    expect(starts.length).toBeGreaterThanOrEqual(1);
    expect(starts.length).toBeLessThanOrEqual(10);
    expect((await stateOf(d.home)).packages['storm']?.commands['img0']?.params).toMatchObject({
      image: 's100.raw',
    });
  });

  it('a half-written file is invalid, then applies once completed', async () => {
    const d = await watchDirs();
    const w = watch(d);
    await w.waitFor(is('watching'));
    const file = join(d.dir, 'half.spin.yaml');
    const text = storagePackage('half', ['h.raw']);
    const cut = text.indexOf('action: create_image') + 'action: crea'.length;
    await writeFile(file, text.slice(0, cut));
    const invalid = await w.waitFor(is('invalid'), { what: 'the invalid half' });
    expect(invalid).toMatchObject({ file });
    expect(w.events.filter(is('apply-start'))).toEqual([]);
    const from = w.mark();
    await appendFile(file, text.slice(cut));
    expect(await w.waitFor(applied('half'), { from })).toMatchObject({ summary: { succeeded: 2 } });
  });

  it('an invalid edit is reported with diagnostics, keeps the last good package, and a fix applies', async () => {
    const d = await watchDirs();
    const file = join(d.dir, 'fix.spin.yaml');
    await writeFile(file, storagePackage('fix', ['a.raw']));
    const w = watch(d, '--allow-replace'); // its edits rename an image: a replace;
    await w.waitFor(applied('fix'));
    let from = w.mark();
    await writeFile(
      file,
      storagePackage('fix', ['b.raw']).replace('image_size: 1', 'image_size: big'),
    );
    const invalid = await w.waitFor(is('invalid'), { from });
    expect(invalid).toMatchObject({ file, package: 'fix' });
    const diagnostics = invalid.type === 'invalid' ? invalid.diagnostics : [];
    expect(diagnostics[0]).toMatchObject({
      file,
      line: 4,
      path: 'commands.img0.params.image_size',
    });
    expect(w.events.slice(from).filter(is('apply-start'))).toEqual([]);
    expect((await stateOf(d.home)).packages['fix']?.commands['img0']?.params).toMatchObject({
      image: 'a.raw',
    });

    from = w.mark();
    await writeFile(file, storagePackage('fix', ['b.raw']));
    expect(await w.waitFor(applied('fix'), { from })).toMatchObject({
      reason: 'changed',
      summary: { succeeded: 1 },
    });
    expect(existsSync(join(d.home, 'images/fix/b.raw'))).toBe(true);
  });

  it('a second file defining the same package is refused until the first lets go of it', async () => {
    const d = await watchDirs();
    const first = join(d.dir, 'first.spin.yaml');
    const second = join(d.dir, 'second.spin.yaml');
    await writeFile(first, storagePackage('dup', ['a.raw']));
    const w = watch(d, '--allow-replace'); // its edits rename an image: a replace;
    await w.waitFor(applied('dup'));
    let from = w.mark();
    await writeFile(second, storagePackage('dup', ['b.raw']));
    expect(await w.waitFor(is('invalid'), { from })).toMatchObject({
      file: second,
      diagnostics: [
        { reason: 'duplicate-package', message: `package 'dup' is already defined in ${first}` },
      ],
    });
    from = w.mark();
    await rm(first);
    await w.waitFor((e) => applied('dup')(e) && 'file' in e && e.file === second, { from });
    expect(existsSync(join(d.home, 'images/dup/b.raw'))).toBe(true);
    expect(w.events.slice(from).filter(is('unmanaged'))).toEqual([]);
  });

  it('--once lets go of a package whose file was removed while nobody watched', async () => {
    const d = await watchDirs();
    const env = { SPIN_HOME: d.home };
    const once = (...args: string[]) =>
      spin(['watch', d.dir, '--once', '--output', 'json', ...args], { env });
    const file = join(d.dir, 'old.spin.yaml');
    await writeFile(file, storagePackage('old', ['a.raw']));
    expect((await once()).code).toBe(0);
    await rm(file);
    const kept = await once();
    expect(kept.code).toBe(0);
    expect(kept.stdout).toContain(
      `"type":"unmanaged","package":"old","file":${JSON.stringify(file)}`,
    );
    expect(existsSync(join(d.home, 'images/old/a.raw'))).toBe(true);
    const pruned = await once('--prune');
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toContain('"type":"destroyed","package":"old"');
    expect(existsSync(join(d.home, 'images/old'))).toBe(false);
    expect((await stateOf(d.home)).packages).toEqual({});
  });
});
