import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rotateConsole } from '../../src/agents/emulation/console-rotation.js';
import { testDir } from '../support/spin-cli.js';

describe('console rotation', () => {
  it('keeps the last boots as console.log.1 (newest) … .5, and drops older ones', async () => {
    const dir = await testDir('spin-console-');
    const console = join(dir, 'console.log');
    for (let boot = 1; boot <= 8; boot++) {
      await rotateConsole(console);
      await writeFile(console, `boot ${String(boot)}\n`);
    }
    expect(await readFile(console, 'utf8')).toBe('boot 8\n');
    for (let n = 1; n <= 5; n++)
      expect(await readFile(`${console}.${String(n)}`, 'utf8')).toBe(`boot ${String(8 - n)}\n`);
    expect(existsSync(`${console}.6`)).toBe(false);
  });

  it('leaves an empty or missing console alone, so a start that wrote nothing pushes out no boot', async () => {
    const dir = await testDir('spin-console-');
    const console = join(dir, 'console.log');
    await rotateConsole(console);
    expect(existsSync(`${console}.1`)).toBe(false);
    await writeFile(console, 'boot 1\n');
    await rotateConsole(console);
    await writeFile(console, '');
    await rotateConsole(console);
    expect(await readFile(`${console}.1`, 'utf8')).toBe('boot 1\n');
    expect(existsSync(`${console}.2`)).toBe(false);
  });
});
