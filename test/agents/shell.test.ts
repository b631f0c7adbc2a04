import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpinError } from '../../src/core/errors.js';
import { shellAgent } from '../../src/agents/shell/shell-agent.js';
import { fileAppears } from '../support/file-appears.js';
import { makeTempHome, type TempHome } from '../support/temp-home.js';

const fake = fileURLToPath(new URL('../fixtures/fake-program.js', import.meta.url));
const node = process.execPath;
const agent = shellAgent({ allowShell: true, tailBytes: 1024, killAfterMs: 300 });
let t: TempHome;

beforeEach(async () => {
  t = await makeTempHome('spin-shell-');
});
afterEach(() => t.cleanup());

async function failure(promise: Promise<unknown>): Promise<SpinError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SpinError);
  return error as SpinError;
}

describe('shell run', () => {
  it('is refused unless shell commands are allowed', async () => {
    const off = shellAgent({ allowShell: false });
    const error = await failure(t.run(off, 'run', { argv: [node, fake, '--print=hi'] }));
    expect(error.code).toBe('shell_disabled');
    expect(error.retryable).toBe(false);
  });

  it('runs an argv without a shell, in $SPIN_HOME/work, with env', async () => {
    const argv = [node, fake, '--print=$HOME; echo pwned', '--pwd', '--env=GREETING'];
    const result = await t.run(agent, 'run', { argv, env: { GREETING: 'hello' } });
    expect(result.output).toBe(`$HOME; echo pwned\n${join(t.home, 'work')}\nGREETING=hello\n`);
  });

  it('runs in a confined cwd, creating it; refuses traversal and symlinks', async () => {
    const result = await t.run(agent, 'run', { argv: [node, fake, '--pwd'], cwd: 'jobs/one' });
    expect(result.output).toBe(`${join(t.home, 'work', 'jobs', 'one')}\n`);
    for (const cwd of ['../images', '/tmp', 'a/../../x']) {
      expect((await failure(t.run(agent, 'run', { argv: [node, fake], cwd }))).code).toBe(
        'path_outside_root',
      );
    }
    await mkdir(join(t.home, 'elsewhere'));
    await symlink(join(t.home, 'elsewhere'), join(t.home, 'work', 'jobs', 'link'));
    const error = await failure(
      t.run(agent, 'run', { argv: [node, fake], cwd: 'jobs/link/deeper' }),
    );
    expect(error.code).toBe('path_outside_root');
  });

  it('fails with action_failed, the exit code and the output tail', async () => {
    const error = await failure(
      t.run(agent, 'run', { argv: [node, fake, '--print=before', '--stderr=oops', '--fail=3'] }),
    );
    expect(error.code).toBe('action_failed');
    expect(error.retryable).toBe(true);
    expect(error.details).toMatchObject({ exitCode: 3, output: 'before\noops\n' });
  });

  it('keeps only a bounded tail of the output', async () => {
    const result = await t.run(agent, 'run', { argv: [node, fake, '--bytes=100000'] });
    expect(result.output).toMatch(/^\[… \d+ earlier bytes dropped\]\n/);
    expect(result.output.endsWith('END\n')).toBe(true);
    expect(Buffer.byteLength(result.output)).toBeLessThan(1100);
  });

  it('kills the child when the signal aborts (timeout), even one that ignores SIGTERM', async () => {
    const ready = join(t.home, 'child.pid');
    const controller = new AbortController();
    const run = t.run(
      agent,
      'run',
      {
        argv: [
          node,
          fake,
          '--ignore-term',
          '--print=started',
          `--ready-file=${ready}`,
          '--sleep=60000',
        ],
      },
      controller.signal,
    );
    // The deadline passes only once the child provably runs, and has printed, and ignores SIGTERM.
    const pid = Number(await fileAppears(ready, run));
    controller.abort(new DOMException('The deadline passed.', 'TimeoutError'));
    const error = await failure(run);
    expect(error.code).toBe('timeout');
    expect(error.retryable).toBe(true);
    expect(error.details['output']).toContain('started');
    // run settles once the child has ended: it is gone, not left sleeping.
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });

  it('reports a cancelled command as cancelled', async () => {
    const controller = new AbortController();
    const ctx = {
      ...t.ctx(controller.signal),
    };
    const run = agent.actions.get('run')!.run({ argv: [node, fake, '--sleep=60000'] }, ctx);
    controller.abort();
    expect((await failure(run)).code).toBe('cancelled');
  });

  it('reports a missing program as not_found', async () => {
    const error = await failure(t.run(agent, 'run', { argv: ['no-such-program-spin-test'] }));
    expect(error.code).toBe('not_found');
  });
});
