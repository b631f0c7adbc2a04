import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spin, testDir } from '../support/spin-cli.js';

const composed = 'caf\u00e9'; // é as one character (NFC)
const decomposed = 'cafe\u0301'; // e and a combining acute accent (NFD)

const volumePackage = (name: string, volume: string): string =>
  `package: ${name}\ncommands:\n  vol: { resource: storage, action: add_volume, params: { path: "${volume}" } }\n`;

describe('names that read alike are one name', () => {
  it('takes café written either way as one volume, owned by the package that made it', async () => {
    const home = await testDir('spin-names-');
    const env = { SPIN_HOME: home };
    const first = join(home, 'first.spin.yaml');
    const second = join(home, 'second.spin.yaml');
    await writeFile(first, volumePackage('first', decomposed));
    await writeFile(second, volumePackage('second', composed));
    const applied = await spin(['apply', first, '-o', 'plain'], { env });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect(await readdir(join(home, 'images'))).toEqual([composed]);
    const refused = await spin(['apply', second, '-o', 'plain'], { env });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`claims volume ${composed}, which package first owns`);
  });

  it('refuses bidirectional controls in names and package labels, and never echoes them raw', async () => {
    const home = await testDir('spin-names-');
    const env = { SPIN_HOME: home };
    const file = join(home, 'bidi.spin.yaml');
    await writeFile(file, volumePackage('bidi', 'ab\u202etxt.exe'));
    const validated = await spin(['validate', file], { env });
    expect(validated.code).toBe(2);
    expect(validated.stdout + validated.stderr).toContain('bidirectional controls');
    expect(validated.stdout + validated.stderr).not.toContain('\u202e');

    const label = await spin(['message', 'new', '--name', 'a\u202eb'], { env });
    expect(label.code).toBe(2);
    expect(label.stderr).toContain(
      "package name 'a\\u{202e}b' contains control or bidirectional characters",
    );
    const created = await spin(['message', 'new', '--name', decomposed], { env });
    expect(created.code).toBe(0);
    const listed = await spin(['message', 'list'], { env });
    expect(listed.stdout).toContain(composed);
    expect(listed.stdout).not.toContain(decomposed);
  });
});
