import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spin, testDir } from '../support/spin-cli.js';

describe('what spin prints of a package', () => {
  it('never echoes a bidi override or a 100,000-character id as it is', async () => {
    const file = join(await testDir('spin-display-'), 'names.spin.yaml');
    const long = 'x'.repeat(100_000);
    await writeFile(
      file,
      `package: p\ncommands:\n  "a\u202eb": { resource: storage, action: add_volume, params: { path: one } }\n  ${long}: { resource: storage, action: add_volume, params: { path: two } }\n`,
    );
    const run = await spin(['validate', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).not.toContain('\u202e');
    expect(run.stderr).toContain("invalid name 'a\\u{202e}b'");
    expect(run.stderr).toMatch(/…\(1000\d\d characters\)/);
    expect(run.stderr.length).toBeLessThan(2_000);
  });

  it('writes every line of a long report to a pipe before it exits', async () => {
    const file = join(await testDir('spin-display-'), 'many.spin.yaml');
    const lines = ['package: many', 'commands:'];
    for (let i = 0; i < 2000; i++) {
      lines.push(
        `  c${String(i)}: { resource: storage, action: add_volume, params: { path: ../x } }`,
      );
    }
    await writeFile(file, `${lines.join('\n')}\n`);
    const run = await spin(['validate', file]);
    expect(run.code).toBe(2);
    expect(run.stderr.length).toBeGreaterThan(64 * 1024);
    expect(run.stderr).toMatch(/2000 problems in 1 of 1 file\n$/);
  });
});

describe('a SPIN_HOME that is not a directory', () => {
  it('is refused with exit 2 by every command that uses it, naming it', async () => {
    const file = join(await testDir('spin-home-file-'), 'home');
    await writeFile(file, 'not a directory');
    for (const home of [file, join(file, 'below')]) {
      for (const args of [
        ['status'],
        ['plan', 'examples/storage.spin.yaml'],
        ['apply', 'examples/storage.spin.yaml', '--output', 'plain'],
        ['message', 'list'],
        ['daemon', 'status'],
      ]) {
        const run = await spin(args, { env: { SPIN_HOME: home } });
        expect([args.join(' '), run.code]).toEqual([args.join(' '), 2]);
        expect(run.stderr).toContain(`error: spin's home ${home} is not a directory`);
        expect(run.stderr).not.toMatch(/\n\s+at /);
      }
    }
  });
});
