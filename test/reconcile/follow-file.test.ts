import { appendFile, rename, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { followFile, type FollowedChunk } from '../../src/reconcile/follow-file.js';
import { testDir } from '../support/spin-cli.js';

/** What a chunk says, in short: its file's name, how it begins, its text. */
function shown(chunk: FollowedChunk): string {
  const how = chunk.replaced ? 'replaced' : chunk.fresh ? 'fresh' : 'more';
  return `${chunk.path.slice(chunk.path.lastIndexOf('/') + 1)} ${how} ${chunk.data.toString()}`;
}

describe('following a file', () => {
  it('waits for it, reads what is appended, and goes on across a rotation and a truncation', async () => {
    const dir = await testDir('spin-follow-');
    const path = join(dir, 'console.log');
    const stop = new AbortController();
    // Woken by the directory's changes only: a poll that never comes in the test's time.
    const chunks = followFile({ dir, current: () => path, signal: stop.signal, pollMs: 600_000 });
    const next = async (): Promise<string> => {
      const { value, done } = await chunks.next();
      if (done) throw new Error('the follow ended');
      return shown(value);
    };
    /** The chunks until their text ends with `text` (the follow may read a change in parts). */
    const until = async (text: string): Promise<string[]> => {
      const got: string[] = [];
      let all = '';
      while (!all.endsWith(text)) {
        const { value, done } = await chunks.next();
        if (done) throw new Error('the follow ended');
        got.push(shown(value));
        all += value.data.toString();
      }
      return got;
    };

    expect(await next()).toBe('console.log fresh '); // nothing there yet
    await writeFile(path, 'boot 1\n');
    expect((await until('boot 1\n')).join('|')).toMatch(
      /^console\.log fresh (boot 1\n|\|console\.log more boot 1\n)$/,
    );
    await appendFile(path, 'more\n');
    expect(await next()).toBe('console.log more more\n');

    // Rotated: the old file gets its last words after the rename, then a new one begins.
    await rename(path, `${path}.1`);
    await appendFile(`${path}.1`, 'last words\n');
    await writeFile(path, 'boot 2\n');
    // (A file is created empty, then written: the follow may see it in between.)
    expect((await until('boot 2\n')).join('|')).toMatch(
      /^console\.log more last words\n\|console\.log replaced (boot 2\n|\|console\.log more boot 2\n)$/,
    );

    // Truncated in place (a qemu that opens its console anew without rotation).
    await truncate(path, 0);
    await appendFile(path, 'b3\n');
    const truncated = await until('b3\n');
    expect(truncated[0]).toMatch(/^console\.log replaced /);
    expect(truncated.join('|')).toMatch(/^console\.log replaced (b3\n|\|console\.log more b3\n)$/);

    stop.abort();
    expect((await chunks.next()).done).toBe(true);
  });

  it('switches to the file `current` names when it changes, reading the old one to its end', async () => {
    const dir = await testDir('spin-follow-');
    let n = 1;
    const stop = new AbortController();
    await writeFile(join(dir, '1.log'), 'a\n');
    const chunks = followFile({
      dir,
      current: () => join(dir, `${String(n)}.log`),
      signal: stop.signal,
      pollMs: 600_000,
    });
    const seen: string[] = [];
    for await (const chunk of chunks) {
      seen.push(shown(chunk));
      if (seen.length === 1) {
        n = 2;
        await appendFile(join(dir, '1.log'), 'b\n');
        await writeFile(join(dir, '2.log'), 'c\n');
      }
      if (chunk.data.toString().endsWith('c\n')) break;
    }
    expect(seen.join('|')).toMatch(
      /^1\.log fresh a\n\|1\.log more b\n\|2\.log replaced (c\n|\|2\.log more c\n)$/,
    );
    stop.abort();
  });
});
