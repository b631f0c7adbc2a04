import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { binPath, killHard } from '../support/cli-process.js';
import { fileAppears } from '../support/file-appears.js';
import { repoRoot, spin, startSpin, testDir, type RunningSpin } from '../support/spin-cli.js';
import { alive } from '../support/process-alive.js';

const fake = join(repoRoot, 'test/fixtures/fake-program.js');

/**
 * A package whose `wait` command runs until the test creates `gate`; `after` needs it. The
 * `wait` child writes its pid to `ready` once it runs.
 */
const slow = (gate: string, ready: string): string => `package: slow
commands:
  vol: { resource: storage, action: add_volume, params: { path: data } }
  wait: { resource: shell, action: run, needs: [vol], params: { argv: [node, ${JSON.stringify(fake)}, --ready-file=${ready}, --wait-file=${gate}] } }
  after: { resource: storage, action: create_image, needs: [wait], params: { volume: data, image: z.raw, image_size: 1 } }
`;

/** A temp home holding the `slow` package; its gate is opened when the test ends. */
async function slowHome(): Promise<{
  home: string;
  file: string;
  gate: string;
  ready: string;
  env: Record<string, string>;
}> {
  const home = await testDir('spin-recovery-');
  const file = join(home, 'pkg.spin.yaml');
  const gate = join(home, 'gate');
  const ready = join(home, 'ready');
  await writeFile(file, slow(gate, ready));
  onTestFinished(() => writeFile(gate, ''));
  return { home, file, gate, ready, env: { SPIN_HOME: home } };
}

interface Killed {
  home: string;
  file: string;
  gate: string;
  env: Record<string, string>;
  pid: number;
  /** The pid of the `wait` program the dead apply left running. */
  orphan: number;
}

/**
 * Applies `slow` in a temp home and kills the apply with SIGKILL while `wait` runs, as a crash
 * would: its embedded broker leaves `wait` running and `after` waiting in the store. The orphaned
 * `wait` child is released when the test ends.
 */
async function applyKilledMidRun(): Promise<Killed> {
  const { home, file, gate, ready, env } = await slowHome();
  const run: RunningSpin = startSpin(['apply', file, '--allow-shell', '--output', 'plain'], {
    env,
  });
  await run.waitFor(/slow\/wait running/);
  const orphan = Number(await fileAppears(ready, run.done));
  await rm(ready);
  run.signal('SIGKILL');
  await run.done;
  expect(alive(orphan)).toBe(true); // its agent died; the program it ran did not
  return { home, file, gate, env, pid: run.pid, orphan };
}

describe('recovery after a killed apply', () => {
  it('the next apply ends and cancels what the dead one left, says so, and runs the package itself', async () => {
    const k = await applyKilledMidRun();
    const running = startSpin(['apply', k.file, '--allow-shell', '--output', 'plain'], {
      env: k.env,
    });
    await running.waitFor(/recovered from an interrupted spin apply/);
    // The dead apply's program was ended before anything ran again; the gate never opened.
    expect(alive(k.orphan)).toBe(false);
    await running.waitFor(/slow\/wait running/);
    await writeFile(k.gate, '');
    const next = await running.done;
    expect(next.code).toBe(0);
    expect(next.stderr).toMatch(
      new RegExp(
        `recovered from an interrupted spin apply \\(pid ${String(k.pid)}, started [^)]+\\): cancelled 1 command of slow that had not started; it was running wait, whose outcome is unknown`,
      ),
    );
    // wait and after run in the new apply's own package.
    expect(next.stdout).toMatch(/slow\/wait succeeded/);
    expect(next.stdout).toMatch(/slow\/after succeeded/);
    const again = await spin(['plan', k.file], { env: k.env });
    expect(again.stdout).not.toMatch(/create|update|drifted/);
  });

  it('spin watch recovers the same way before its first apply', async () => {
    const k = await applyKilledMidRun();
    await writeFile(k.gate, '');
    const watched = await spin(['watch', k.home, '--once', '--allow-shell', '--output', 'plain'], {
      env: k.env,
    });
    expect(watched.code).toBe(0);
    expect(watched.stdout + watched.stderr).toMatch(
      new RegExp(`recovered from an interrupted spin apply \\(pid ${String(k.pid)}, `),
    );
    expect(alive(k.orphan)).toBe(false);
    const plan = await spin(['plan', k.file], { env: k.env });
    expect(plan.stdout).toContain('No changes');
  });

  it('a daemon started later cancels the dead apply’s commands instead of running them', async () => {
    const k = await applyKilledMidRun();
    const daemon = spawn(process.execPath, [binPath, 'daemon', 'run', '--no-agents'], {
      env: { ...process.env, ...k.env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    onTestFinished(() => killHard(daemon));
    let log = '';
    await new Promise<void>((resolve, reject) => {
      daemon.stdout.on('data', (chunk: Buffer) => {
        log += chunk.toString('utf8');
        if (log.includes('"type":"listening"')) resolve();
      });
      daemon.once('exit', (code) => {
        reject(new Error(`the daemon exited (${String(code)}):\n${log}`));
      });
    });
    // Recovery happens before the daemon listens: by now nothing of the dead apply can run.
    const recovered = JSON.parse(
      log.split('\n').find((line) => line.includes('"type":"recovered"')) ?? 'null',
    ) as { report: { cancelled: { name: string; notStarted: number; interrupted: string[] }[] } };
    expect(recovered.report.cancelled).toMatchObject([
      { name: 'slow', notStarted: 1, interrupted: ['wait'] },
    ]);
    expect(existsSync(join(k.home, 'images', 'data', 'z.raw'))).toBe(false);
    const stateFile = join(k.home, 'state.json');
    const state = existsSync(stateFile)
      ? (JSON.parse(await readFile(stateFile, 'utf8')) as {
          packages: Record<string, { commands: Record<string, { status: string }> }>;
        })
      : { packages: {} };
    expect(state.packages['slow']?.commands['after']).toBeUndefined();
  });
});

describe('a run the daemon carries on', () => {
  it('goes on when the apply that submitted it is killed, and the daemon records its results', async () => {
    const { home, file, gate, ready, env } = await slowHome();
    const daemon = spawn(process.execPath, [binPath, 'daemon', 'run', '--allow-shell'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    onTestFinished(() => killHard(daemon));
    let log = '';
    const logged = (pattern: RegExp): Promise<void> =>
      new Promise((resolve, reject) => {
        const look = (): void => {
          if (pattern.test(log)) resolve();
        };
        daemon.stdout.on('data', (chunk: Buffer) => {
          log += chunk.toString('utf8');
          look();
        });
        daemon.once('exit', (code) => {
          reject(new Error(`the daemon exited (${String(code)}):\n${log}`));
        });
        look();
      });
    await logged(/"type":"listening"/);

    const run = startSpin(['apply', file, '--output', 'plain'], { env });
    await run.waitFor(/slow\/wait running/);
    await fileAppears(ready, run.done);
    run.signal('SIGKILL');
    await run.done;
    // The submitter is gone; the daemon finishes the run and writes its results.
    await writeFile(gate, '');
    await logged(/"type":"recorded","package":"slow"/);
    const state = JSON.parse(await readFile(join(home, 'state.json'), 'utf8')) as {
      packages: Record<string, { commands: Record<string, { status: string }> }>;
    };
    expect(
      Object.entries(state.packages['slow']?.commands ?? {}).map(([id, c]) => `${id} ${c.status}`),
    ).toEqual(['vol succeeded', 'wait succeeded', 'after succeeded']);
    const again = await spin(['apply', file, '--output', 'plain'], { env });
    expect(again.stdout).toContain('Nothing to do: 3 commands up to date.');
  });
});
