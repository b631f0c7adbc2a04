import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AttemptLog,
  attemptFiles,
  keptAttempts,
  logSegment,
  parseLogLines,
} from '../../src/executor/attempt-log.js';
import { testDir } from '../support/spin-cli.js';

const attempt = { packageName: 'pkg', commandId: 'cmd', action: 'shell.run' };

/** Every line of attempt `n` as a reader shows it (both segments). */
function linesOf(dir: string, n: number): string[] {
  const files = attemptFiles(dir, n);
  let text = '';
  for (const path of [files.previous, files.current]) {
    try {
      text += readFileSync(path, 'utf8');
    } catch {
      // no such segment
    }
  }
  return parseLogLines(text).map((l) => `${l.tag} ${l.text}`);
}

describe('an attempt log', () => {
  it('keeps stdout, stderr and progress as lines, whole across chunks, numbered per command', async () => {
    const home = await testDir('spin-attempt-log-');
    const log = await AttemptLog.open(home, attempt);
    expect(log.number).toBe(0); // nothing said yet, nothing kept yet
    log.output(Buffer.from('one\ntw'), 'stdout');
    expect(log.number).toBe(1);
    log.output(Buffer.from('oops\n'), 'stderr');
    log.output(Buffer.from('o\n'), 'stdout');
    // A character split between chunks is decoded whole.
    const e = Buffer.from('é');
    log.output(e.subarray(0, 1), 'stdout');
    log.output(e.subarray(1), 'stdout');
    log.message('copying');
    log.close('succeeded', false);
    const dir = join(home, 'logs/pkg/cmd');
    expect(linesOf(dir, 1)).toEqual([
      'note started shell.run (attempt 1)',
      'out one',
      'err oops',
      'out two',
      'msg copying',
      'out é',
      'note succeeded',
    ]);
    // A quiet attempt is kept when earlier ones are: it is the last now.
    const quiet = await AttemptLog.open(home, attempt);
    quiet.close('succeeded in 1ms', false);
    expect(keptAttempts(dir)).toEqual([1, 2]);
    expect(linesOf(dir, 2)).toEqual([
      'note started shell.run (attempt 2)',
      'note succeeded in 1ms',
    ]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('leaves no file for a quiet success of a command without kept attempts, but for a failure', async () => {
    const home = await testDir('spin-attempt-log-');
    const log = await AttemptLog.open(home, attempt);
    log.close('succeeded in 1ms: volume v created', false);
    expect(existsSync(join(home, 'logs/pkg'))).toBe(false);
    const failed = await AttemptLog.open(home, attempt);
    failed.close("failed in 2ms: no such volume 'v' [not_found]", true);
    expect(linesOf(join(home, 'logs/pkg/cmd'), 1)).toEqual([
      'note started shell.run (attempt 1)',
      "note failed in 2ms: no such volume 'v' [not_found]",
    ]);
  });

  it('is bounded: the latest output of an attempt, and the last attempts of a command', async () => {
    const home = await testDir('spin-attempt-log-');
    const limits = { segmentBytes: 4096, keep: 3 };
    const log = await AttemptLog.open(home, attempt, { limits });
    for (let i = 1; i <= 1000; i++) log.output(Buffer.from(`line ${String(i)}\n`), 'stdout');
    log.close('succeeded', false);
    const dir = join(home, 'logs/pkg/cmd');
    const lines = linesOf(dir, 1);
    const files = attemptFiles(dir, 1);
    expect(statSync(files.current).size + statSync(files.previous).size).toBeLessThanOrEqual(
      2 * limits.segmentBytes,
    );
    // What was dropped is said first, then the latest lines in order, to the end.
    expect(lines[0]).toMatch(/^cut \d+$/);
    const dropped = Number(lines[0]?.slice(4));
    expect(lines[1]).toBe(`out line ${String(dropped)}`); // the start note was one of them
    expect(lines.slice(-2)).toEqual(['out line 1000', 'note succeeded']);
    expect(lines.filter((l) => l.startsWith('cut'))).toHaveLength(1);

    for (let i = 0; i < 5; i++)
      (await AttemptLog.open(home, attempt, { limits })).close('done', true);
    expect(keptAttempts(dir)).toEqual([4, 5, 6]);
    expect(readdirSync(dir).sort()).toEqual(['4.log', '5.log', '6.log']);
  });

  it('cuts a line without newline into bounded lines', async () => {
    const home = await testDir('spin-attempt-log-');
    const log = await AttemptLog.open(home, attempt);
    log.output(Buffer.from('x'.repeat(40_000)), 'stdout');
    log.close('done', false);
    const lengths = parseLogLines(readFileSync(join(home, 'logs/pkg/cmd/1.log'), 'utf8'))
      .filter((l) => l.tag === 'out')
      .map((l) => l.text.length);
    expect(lengths).toEqual([16_384, 16_384, 7_232]);
  });

  it('names a directory by a hash when a name is not a plain one, and follows no link', async () => {
    expect(logSegment('vm-demo')).toBe('vm-demo');
    expect(logSegment('../../etc')).toMatch(/^~[0-9a-f]{32}$/);
    expect(logSegment('..')).toMatch(/^~/);
    const home = await testDir('spin-attempt-log-');
    const log = await AttemptLog.open(home, { packageName: '../x', commandId: 'a/b', action: 'a' });
    log.close('done', true);
    expect(readdirSync(join(home, 'logs'))).toEqual([logSegment('../x')]);

    // A link planted where the logs go is not written through: the attempt keeps nothing.
    const other = await testDir('spin-attempt-log-');
    await mkdir(join(home, 'logs', 'linked'));
    await symlink(other, join(home, 'logs', 'linked', 'cmd'));
    const refused = await AttemptLog.open(home, { ...attempt, packageName: 'linked' });
    refused.message('never written');
    refused.close('done', true);
    expect(refused.number).toBe(0);
    expect(readdirSync(other)).toEqual([]);
  });
});
