import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { cp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { expectDocument, expectEventLines } from '../support/output-schema.js';
import { repoRoot, spin, testDir } from '../support/spin-cli.js';

const storage = (size: number): string => `package: ci-disks
commands:
  vol: { resource: storage, action: add_volume, params: { path: ci } }
  disk: { resource: storage, action: create_image, needs: [vol], params: { volume: ci, image: d.raw, image_size: ${String(size)} } }
`;

/** A checkout of a repository with one package, as a CI job sees it. */
async function checkout(dir: string, size: number): Promise<void> {
  await mkdir(join(dir, 'packages'), { recursive: true });
  await writeFile(join(dir, 'packages', 'disks.spin.yaml'), storage(size));
}

/** A directory with a `spin` command on it that runs this build, as a runner's PATH has. */
async function spinOnPath(home: string): Promise<string> {
  const bin = join(home, 'bin');
  await mkdir(bin, { recursive: true });
  const shim = join(bin, 'spin');
  await writeFile(
    shim,
    `#!/bin/sh\nexec "${process.execPath}" "${join(repoRoot, 'bin/run.cjs')}" "$@"\n`,
  );
  chmodSync(shim, 0o755);
  return bin;
}

/** The shell lines of a CI file's steps: `run:` of a GitHub job, `script:` of a GitLab one. */
async function stepsOf(file: string, job: string): Promise<string[]> {
  const doc = load(await readFile(join(repoRoot, 'examples/ci', file), 'utf8')) as {
    jobs?: Record<string, { steps: { run?: string }[] }>;
  } & Record<string, { script?: string[] }>;
  const github = doc.jobs?.[job]?.steps.flatMap((s) => (s.run === undefined ? [] : [s.run]));
  return github ?? doc[job]?.script ?? [];
}

/** Runs shell lines as a CI runner would (bash -e), with `spin` on the PATH; stops at a failure. */
function runSteps(
  steps: readonly string[],
  cwd: string,
  env: Record<string, string>,
): { code: number; step: string; stderr: string } {
  for (const step of steps) {
    const run = spawnSync('bash', ['-e', '-c', step], {
      cwd,
      env: { ...process.env, ...env, CI: 'true' },
      encoding: 'utf8',
    });
    if (run.status !== 0) return { code: run.status ?? 1, step, stderr: run.stderr };
  }
  return { code: 0, step: '', stderr: '' };
}

describe('the CI examples, run as their runners would', () => {
  it.each([
    ['github-actions.yml', 'plan', 'apply'],
    ['gitlab-ci.yml', 'plan', 'apply'],
  ])(
    '%s: the reviewed plan is the one applied; a stale one is refused',
    async (file, planJob, applyJob) => {
      const home = await testDir('spin-ci-');
      const env = {
        SPIN_HOME: join(home, 'spin'),
        PATH: `${await spinOnPath(home)}:${process.env['PATH'] ?? ''}`,
      };
      const review = join(home, 'review');
      await checkout(review, 1);
      const validateSteps = file === 'gitlab-ci.yml' ? await stepsOf(file, 'validate') : [];
      const planned = runSteps([...validateSteps, ...(await stepsOf(file, planJob))], review, env);
      expect(planned, planned.stderr).toMatchObject({ code: 0 });
      expect((await stat(join(review, 'spin.plan'))).mode & 0o777).toBe(0o600);
      const summary = await readFile(join(review, 'plan.md'), 'utf8');
      expect(summary).toContain('### spin plan: 2 to create');
      expect(summary).toContain('| `+` | `disk` | create | new command |');

      // The artifact travels to the job that applies, in a checkout of its own.
      const main = join(home, 'main');
      await checkout(main, 1);
      await cp(join(review, 'spin.plan'), join(main, 'spin.plan'));
      const applied = runSteps(await stepsOf(file, applyJob), main, env);
      expect(applied, applied.stderr).toMatchObject({ code: 0 });
      const events = expectEventLines(await readFile(join(main, 'apply.jsonl'), 'utf8'));
      expect(events.at(-1)).toMatchObject({ type: 'done', summary: { succeeded: 2, failed: 0 } });
      const status = await spin(['status', '--output', 'json'], { env });
      expect(expectDocument('status', status.stdout)).toMatchObject({
        packages: [{ name: 'ci-disks', commands: [{ id: 'vol' }, { id: 'disk' }] }],
      });

      // A second review plans a larger disk; meanwhile another apply changes the state. The
      // reviewed plan is stale now: applying it is refused, and nothing runs.
      await checkout(review, 2);
      expect(runSteps(await stepsOf(file, planJob), review, env).code).toBe(0);
      await checkout(main, 2);
      await cp(join(review, 'spin.plan'), join(main, 'spin.plan'));
      const other = join(home, 'other.spin.yaml');
      await writeFile(
        other,
        'package: other\ncommands:\n  v: { resource: storage, action: add_volume, params: { path: other } }\n',
      );
      expect((await spin(['apply', other, '-o', 'plain'], { env })).code).toBe(0);
      const stale = runSteps(await stepsOf(file, applyJob), main, env);
      expect(stale.code).toBe(3);
      const refusal = expectEventLines(await readFile(join(main, 'apply.jsonl'), 'utf8'));
      expect(refusal.at(-1)).toMatchObject({
        kind: 'error',
        error: { code: 'state_conflict', exit_code: 3, details: { stale: 'state' } },
      });
      expect((await stat(join(env.SPIN_HOME, 'images', 'ci', 'd.raw'))).size).toBe(1024 ** 3);
    },
  );
});

describe('saved plans', () => {
  it('refuses a plan whose file changed, and planning flags beside a saved plan', async () => {
    const home = await testDir('spin-saved-');
    const env = { SPIN_HOME: home };
    await checkout(home, 1);
    const planFile = join(home, 'p.plan');
    const planned = await spin(['plan', 'packages/', '--out', planFile, '--target', 'vol'], {
      env,
      cwd: home,
    });
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toContain('Apply runs only what these select: targets: vol.');
    expect(planned.stdout).toContain(`To carry out exactly this plan: spin apply ${planFile}`);
    const shown = await spin(['show', planFile, '--output', 'json']);
    expect(expectDocument('plan', shown.stdout)).toMatchObject({ options: { targets: ['vol'] } });

    const flags = await spin(['apply', planFile, '--prune'], { env, cwd: home });
    expect(flags.code).toBe(2);
    expect(flags.stderr).toContain('--prune cannot be given with a saved plan');

    await writeFile(join(home, 'packages', 'disks.spin.yaml'), storage(3));
    const changed = await spin(['apply', planFile, '-o', 'plain'], { env, cwd: home });
    expect(changed.code).toBe(3);
    expect(changed.stderr).toContain(
      'packages/disks.spin.yaml (package ci-disks) changed since it was made',
    );

    // Made again, it runs only its target: the volume, not the disk.
    expect(
      (await spin(['plan', 'packages/', '--out', planFile, '--target', 'vol'], { env, cwd: home }))
        .code,
    ).toBe(0);
    const applied = await spin(['apply', planFile, '-o', 'plain'], { env, cwd: home });
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('Apply complete: 1 succeeded.');
    expect(applied.stdout).not.toContain('ci-disks/disk');

    const notAPlan = join(home, 'not.plan');
    await writeFile(notAPlan, '{"kind": "status"}');
    const refused = await spin(['show', notAPlan]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('is not a saved plan');
  });

  it('plans while another process holds the state, and says so', async () => {
    const home = await testDir('spin-saved-');
    const env = { SPIN_HOME: home };
    await checkout(home, 1);
    const since = new Date().toISOString();
    await writeFile(
      join(home, 'state.json.lock'),
      JSON.stringify({ pid: process.pid, host: hostname(), since, command: 'spin watch' }),
    );
    const planned = await spin(['plan', 'packages/'], { env, cwd: home });
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stderr).toContain(
      `note: the state was being changed while this plan read it (spin watch, pid ${String(process.pid)}`,
    );
    const json = await spin(['plan', 'packages/', '--json'], { env, cwd: home });
    expect(expectDocument('plan', json.stdout)).toMatchObject({
      state: { changing: { pid: process.pid, command: 'spin watch' } },
    });
    // Apply still waits for the lock.
    expect((await spin(['apply', 'packages/', '-o', 'plain'], { env, cwd: home })).code).toBe(3);
  });
});

describe('one JSON contract', () => {
  it('every command prints documents its published schema accepts, errors included', async () => {
    const home = await testDir('spin-json-');
    const env = { SPIN_HOME: home };
    await checkout(home, 1);
    const file = join(home, 'packages', 'disks.spin.yaml');
    const run = (args: string[]) => spin(args, { env, cwd: home });

    expectDocument('validate', (await run(['validate', file, '--output', 'json'])).stdout);
    expectDocument('graph', (await run(['graph', file, '--json'])).stdout);
    expectDocument('plan', (await run(['plan', file, '-o', 'json'])).stdout);
    const applied = await run(['apply', file, '--output', 'json']);
    expect(expectEventLines(applied.stdout).map((e) => e['type'])).toContain('done');
    expectDocument('status', (await run(['status', '--json'])).stdout);
    const pkg = (await run(['message', 'new', '--name', 'by-hand'])).stdout.trim();
    expectDocument('message-status', (await run(['message', 'status', pkg, '--json'])).stdout);
    expectDocument('message-list', (await run(['message', 'list', '-o', 'json'])).stdout);
    expectDocument('import', (await run(['import', file, 'ci-disks', '--json'])).stdout);
    expectDocument('logs', (await run(['logs', 'ci-disks/disk', '--json'])).stdout);
    const destroyed = await run(['destroy', 'ci-disks', '-o', 'json']);
    expect(expectEventLines(destroyed.stdout).at(-1)).toMatchObject({ type: 'done' });

    // Failures: the same exit codes, as error documents on stdout.
    const bad = join(home, 'bad.spin.yaml');
    await writeFile(
      bad,
      'package: bad\ncommands:\n  v: { resource: storge, action: add_volume }\n',
    );
    // validate reports invalid files as its own result, not as an error.
    const invalid = await run(['validate', bad, '--json']);
    expect(invalid.code).toBe(2);
    expect(expectDocument('validate', invalid.stdout)).toMatchObject({
      valid: false,
      diagnostics: [{ line: 3, reason: 'unknown-resource' }],
    });
    for (const [args, code, errorCode] of [
      [['plan', bad, '--output', 'json'], 2, 'invalid_package'],
      [['apply', bad, '-o', 'json'], 2, 'invalid_package'],
      [['status', 'nope', '--json'], 2, 'not_found'],
      [['daemon', 'status', '--json'], 4, 'unreachable'],
    ] as const) {
      const failed = await run([...args]);
      expect(failed.code, args.join(' ')).toBe(code);
      const doc = expectDocument<{ error: { code: string; diagnostics?: unknown[] } }>(
        'error',
        failed.stdout,
      );
      expect(doc.error.code).toBe(errorCode);
      if (errorCode === 'invalid_package') {
        expect(doc.error.diagnostics).toEqual([
          expect.objectContaining({ file: bad, line: 3, reason: 'unknown-resource' }),
        ]);
      }
    }
  });
});
