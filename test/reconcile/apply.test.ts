import { existsSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectDocument } from '../support/output-schema.js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { repoRoot, spin, startSpin, testDir, type RunningSpin } from '../support/spin-cli.js';

const fake = join(repoRoot, 'test/fixtures/fake-program.js');

interface Setup {
  home: string;
  file: string;
  run: (...args: string[]) => ReturnType<typeof spin>;
  /** Starts `spin apply <file> ...args`; it is interrupted and waited for when the test ends. */
  start: (...args: string[]) => RunningSpin;
  write: (text: string) => Promise<void>;
  state: () => Promise<{
    serial: number;
    packages: Record<string, { commands: Record<string, { status: string }> }>;
  }>;
}

/** A temp SPIN_HOME holding `pkg.spin.yaml`; removed, with its 1 GiB images, when the test ends. */
async function setup(text: string): Promise<Setup> {
  const home = await testDir('spin-apply-');
  const file = join(home, 'pkg.spin.yaml');
  await writeFile(file, text);
  const env = { SPIN_HOME: home };
  return {
    home,
    file,
    run: (...args) => spin(args, { env }),
    start: (...args) => {
      const running = startSpin(['apply', file, ...args], { env });
      // Registered after the home, so it runs first: nothing writes in the home once it goes.
      onTestFinished(() => stop(running));
      return running;
    },
    write: (t) => writeFile(file, t),
    state: async () =>
      JSON.parse(await readFile(join(home, 'state.json'), 'utf8')) as Awaited<
        ReturnType<Setup['state']>
      >,
  };
}

/** Interrupts a run still going, as Ctrl-C would (it cancels its commands), and waits for its end. */
async function stop(running: RunningSpin): Promise<void> {
  running.signal('SIGINT');
  const timer = setTimeout(() => {
    running.signal('SIGKILL');
  }, 20_000);
  await running.done;
  clearTimeout(timer);
}

const storage = (size2 = 1, name2 = 'b.raw'): string => `package: store
commands:
  vol: { resource: storage, action: add_volume, params: { path: data } }
  a:
    resource: storage
    action: create_image
    needs: [vol]
    params: { volume: data, image: a.raw, image_size: 1 }
  b:
    resource: storage
    action: create_image
    needs: [vol]
    params: { volume: data, image: ${name2}, image_size: ${String(size2)}, format: qcow2 }
`;

/** The ids of commands that ran (`succeeded`/`failed`) in plain output. */
const ran = (stdout: string): string[] =>
  [...stdout.matchAll(/ store\/(\S+) (?:succeeded|failed)/g)].map((m) => m[1] ?? '');

describe('spin apply', () => {
  it('creates what the file says, then does nothing the second time', async () => {
    const s = await setup(storage());
    const first = await s.run('apply', s.file);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(ran(first.stdout).sort()).toEqual(['a', 'b', 'vol']);
    expect(first.stdout).toContain('Apply complete: 3 succeeded.');
    const raw = await stat(join(s.home, 'images/data/a.raw'));
    expect(raw.size).toBe(1024 ** 3);
    expect(raw.blocks).toBeLessThan(64); // sparse
    expect((await s.state()).serial).toBe(1);

    const second = await s.run('apply', s.file);
    expect(second.code).toBe(0);
    expect(ran(second.stdout)).toEqual([]);
    expect(second.stdout).toContain('Nothing to do: 3 commands up to date.');
    expect((await s.state()).serial).toBe(1);
  });

  it('after an edit runs only the changed command, and plan says why', async () => {
    const s = await setup(storage());
    expect((await s.run('apply', s.file)).code).toBe(0);
    await s.write(storage(2));
    const planned = await s.run('plan', s.file, '--detailed-exitcode');
    expect(planned.code).toBe(2);
    expect(planned.stdout).toMatch(/~ b\s+update\s+changed: params\.image_size/);
    expect(planned.stdout).toContain('Plan: 1 to update, 2 unchanged.');
    const applied = await s.run('apply', s.file);
    expect(applied.code).toBe(0);
    expect(ran(applied.stdout)).toEqual(['b']);
    expect(applied.stdout).toContain('image data/b.raw grown to 2 GiB');
    expect((await s.run('plan', s.file, '--detailed-exitcode')).code).toBe(0);
  });

  it('sees drift (an image deleted by hand) in plan and repairs it', async () => {
    const s = await setup(storage());
    expect((await s.run('apply', s.file)).code).toBe(0);
    await rm(join(s.home, 'images/data/a.raw'));
    const planned = await s.run('plan', s.file);
    expect(planned.stdout).toMatch(/! a\s+drifted\s+observed missing/);
    const json = expectDocument<{
      changes: boolean;
      packages: { items: { id: string; action: string }[] }[];
    }>('plan', (await s.run('plan', s.file, '--json')).stdout);
    expect(json.changes).toBe(true);
    expect(json.packages[0]?.items.find((c) => c.id === 'a')?.action).toBe('drifted');
    const applied = await s.run('apply', s.file);
    expect(ran(applied.stdout)).toEqual(['a']);
    expect((await stat(join(s.home, 'images/data/a.raw'))).size).toBe(1024 ** 3);
  });

  it('skips what needs a failed command, goes on with the rest, and exits 1', async () => {
    const s = await setup(`package: store
commands:
  vol: { resource: storage, action: add_volume, params: { path: data } }
  bad: { resource: shell, action: run, needs: [vol], params: { argv: [node, ${JSON.stringify(fake)}, --print=boom, --fail=3] } }
  after: { resource: storage, action: create_image, needs: [bad], params: { volume: data, image: x.raw, image_size: 1 } }
  indep: { resource: storage, action: create_image, needs: [vol], params: { volume: data, image: y.raw, image_size: 1 } }
`);
    const run = await s.run('apply', s.file, '--allow-shell');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/store\/bad failed in \S+: .*exited with code 3/);
    expect(run.stdout).toContain("store/after skipped: needs 'bad', which failed");
    expect(run.stdout).toMatch(/store\/indep succeeded/);
    expect(run.stdout).toContain('Apply finished with failures: 2 succeeded, 1 failed, 1 skipped.');
    expect(existsSync(join(s.home, 'images/data/y.raw'))).toBe(true);
    expect(existsSync(join(s.home, 'images/data/x.raw'))).toBe(false);
    const state = await s.state();
    expect(state.packages['store']?.commands['bad']?.status).toBe('failed');
    expect(state.packages['store']?.commands['after']?.status).toBe('skipped');
  });

  it('prunes commands removed from the file, and destroy undoes the rest', async () => {
    const s = await setup(storage());
    expect((await s.run('apply', s.file)).code).toBe(0);
    await s.write(storage().replace(/ {2}b:\n(?: {4}.*\n)+/, ''));
    const kept = await s.run('apply', s.file);
    expect(kept.stdout).toContain('Nothing to do');
    expect(existsSync(join(s.home, 'images/data/b.raw'))).toBe(true);
    const pruned = await s.run('apply', s.file, '--prune');
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toContain('1 undone');
    expect(existsSync(join(s.home, 'images/data/b.raw'))).toBe(false);
    expect(Object.keys((await s.state()).packages['store']?.commands ?? {}).sort()).toEqual([
      'a',
      'vol',
    ]);

    const destroyed = await s.run('destroy', s.file);
    expect(destroyed.code).toBe(0);
    expect(existsSync(join(s.home, 'images/data'))).toBe(false);
    expect((await s.state()).packages).toEqual({});
    const status = await s.run('status');
    expect(status.stdout).toContain('No packages applied yet.');
  });

  it('refuses a corrupt or foreign state file with exit 3 and runs nothing', async () => {
    const s = await setup(storage());
    await writeFile(join(s.home, 'state.json'), '{"half": ');
    const corrupt = await s.run('apply', s.file);
    expect(corrupt.code).toBe(3);
    expect(corrupt.stderr).toContain('is corrupt');
    expect(existsSync(join(s.home, 'images'))).toBe(false);
    await writeFile(join(s.home, 'state.json'), '{"terraform_version": "1.5.0"}');
    const foreign = await s.run('apply', s.file);
    expect(foreign.code).toBe(3);
    expect(foreign.stderr).toContain('is not a spin state file');
    expect(existsSync(join(s.home, 'images'))).toBe(false);
  });
});

describe('spin apply, concurrently and interrupted', () => {
  const slow = (gate: string): string => `package: slow
commands:
  vol: { resource: storage, action: add_volume, params: { path: data } }
  wait: { resource: shell, action: run, needs: [vol], params: { argv: [node, ${JSON.stringify(fake)}, --wait-file=${gate}] } }
  after: { resource: storage, action: create_image, needs: [wait], params: { volume: data, image: z.raw, image_size: 1 } }
`;

  it('a second apply on the same state exits 3 naming the holder; with --lock-timeout it waits', async () => {
    const s = await setup('');
    const gate = join(s.home, 'gate');
    await s.write(slow(gate));
    const first = s.start('--allow-shell');
    await first.waitFor(/slow\/wait running/);
    const second = await s.run('apply', s.file, '--allow-shell');
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(`locked by pid ${String(first.pid)} on`);

    const waiting = s.start('--allow-shell', '--lock-timeout', '2m', '--output', 'plain');
    // The waiter finds the lock held, says by whom, and waits for it.
    await waiting.waitFor(
      new RegExp(`waiting for the state lock, held by spin apply \\(pid ${String(first.pid)} on `),
    );
    const lock = JSON.parse(await readFile(join(s.home, 'state.json.lock'), 'utf8')) as {
      pid: number;
    };
    expect(lock.pid).toBe(first.pid);
    // Only now is the lock released: the waiter takes it and finds the first's work done.
    await writeFile(gate, '');
    expect((await first.done).code).toBe(0);
    const after = await waiting.done;
    expect(after.stderr.trim().split('\n')).toHaveLength(1); // the waiting line, nothing else
    expect(after.code).toBe(0);
    expect(after.stdout).toContain('Nothing to do');
  });

  it('takes over a lock left by a process that died', async () => {
    const s = await setup(storage());
    const { spawnSync } = await import('node:child_process');
    const gone = spawnSync(process.execPath, [
      '-e',
      'process.stdout.write(String(process.pid))',
    ]).stdout.toString();
    const { hostname } = await import('node:os');
    await writeFile(
      `${join(s.home, 'state.json')}.lock`,
      JSON.stringify({
        pid: Number(gone),
        host: hostname(),
        since: '2026-01-01T00:00:00.000Z',
        command: 'spin apply',
      }),
    );
    const run = await s.run('apply', s.file);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Apply complete: 3 succeeded.');
  });

  it('stops cleanly on Ctrl-C and the next apply carries on', async () => {
    const s = await setup('');
    const gate = join(s.home, 'gate');
    await s.write(slow(gate));
    const run = s.start('--allow-shell');
    await run.waitFor(/slow\/wait running/);
    run.signal('SIGINT');
    const ended = await run.done;
    expect(ended.code).toBe(1);
    expect(ended.stdout + ended.stderr).toMatch(/interrupted/);
    const state = await s.state();
    expect(state.packages['slow']?.commands['vol']?.status).toBe('succeeded');
    expect(state.packages['slow']?.commands['wait']?.status).toBe('cancelled');
    expect(existsSync(`${join(s.home, 'state.json')}.lock`)).toBe(false);

    await writeFile(gate, '');
    const resumed = await s.run('apply', s.file, '--allow-shell');
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).not.toMatch(/slow\/vol running/);
    expect(resumed.stdout).toMatch(/slow\/wait succeeded/);
    expect(resumed.stdout).toMatch(/slow\/after succeeded/);
  });
});
