import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { repoRoot, spin, startSpin, testDir } from '../support/spin-cli.js';
import { expectDocument } from '../support/output-schema.js';

const fake = join(repoRoot, 'test/fixtures/fake-program.js');

/** A temp SPIN_HOME holding `pkg.spin.yaml` with `text`, and a way to run spin in it. */
async function setup(text: string): Promise<{
  home: string;
  file: string;
  run: (...args: string[]) => ReturnType<typeof spin>;
  write: (text: string) => Promise<void>;
}> {
  const home = await testDir('spin-logs-');
  const file = join(home, 'pkg.spin.yaml');
  await writeFile(file, text);
  return {
    home,
    file,
    run: (...args) => spin(args, { env: { SPIN_HOME: home } }),
    write: (t) => writeFile(file, t),
  };
}

const failing = `package: failing
commands:
  vol: { resource: storage, action: add_volume, params: { path: v } }
  bad:
    resource: shell
    action: run
    params: { argv: [sh, -c, "echo to-stdout; echo oops >&2; exit 3"] }
  after: { resource: shell, action: run, needs: [bad], params: { argv: ["true"] } }
`;

describe('the output of a failing shell command', () => {
  it('is shown under it by apply (plain and tty), kept for spin logs, and status names the skip', async () => {
    const s = await setup(failing);
    const plain = await s.run('apply', s.file, '--allow-shell', '--output', 'plain');
    expect(plain.code).toBe(1);
    expect(plain.stdout).toMatch(
      /failing\/bad failed in \S+: 'sh' exited with code 3\. \[action_failed\]\n {4}\| to-stdout\n {4}\| oops\n/,
    );

    const logs = await s.run('logs', 'failing/bad');
    expect(logs.stderr).toBe('');
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(
      /^-- started shell\.run \(attempt 1\)\nto-stdout\noops\n-- failed in \S+: 'sh' exited with code 3\. \[action_failed\]\n$/,
    );
    // A command that printed nothing and succeeded leaves no log: logs says so.
    const vol = await s.run('logs', 'failing/vol');
    expect([vol.code, vol.stdout]).toEqual([0, '']);
    expect(vol.stderr).toBe(
      'failing/vol printed nothing: its last run succeeded: volume v created\n',
    );

    const status = await s.run('status', 'failing');
    expect(status.stdout).toMatch(/after\s+skipped\s+shell\.run\s+needs 'bad', which failed/);
    const json = expectDocument<{
      packages: { commands: { id: string; reason?: string }[] }[];
    }>('status', (await s.run('status', '--json')).stdout);
    const after = json.packages[0]?.commands.find((c) => c.id === 'after');
    expect(after?.reason).toBe("needs 'bad', which failed");
    const skipped = await s.run('logs', 'failing/after');
    expect(skipped.code).toBe(2);
    expect(skipped.stderr).toContain("it was skipped: needs 'bad', which failed");

    // The terminal's progress view (listr2) shows it too.
    const tty = await s.run('apply', s.file, '--allow-shell', '--output', 'tty');
    expect(tty.code).toBe(1);
    expect(tty.stdout + tty.stderr).toMatch(
      /bad failed \S+ \[FAILED: 'sh' exited with code 3\.\n\s+\| to-stdout\n\s+\| oops/,
    );
    // Each run of the command is an attempt of its own; the last is shown.
    expect((await s.run('logs', 'failing/bad')).stdout).toContain('(attempt 2)');
  });

  it('names what is unknown, with exit 2', async () => {
    const s = await setup(failing);
    expect((await s.run('apply', s.file, '--allow-shell', '--output', 'plain')).code).toBe(1);
    const cases: [string[], RegExp][] = [
      [['logs', 'nope/bad'], /no package 'nope' in /],
      [
        ['logs', 'failing/nope'],
        /package failing has no command 'nope'\n\s+hint: its commands: vol, bad, after/,
      ],
      [
        ['logs', 'failing/bad', '--attempt', '7'],
        /attempt 7 of failing\/bad is not kept\n\s+hint: kept attempts: 1/,
      ],
      [['logs', 'failing'], /'failing' is not package\/command/],
      [['logs'], /name a command \(package\/command\) or a VM/],
      [['logs', 'failing/bad', '--vm', '1'], /name a command \(package\/command\) or a VM/],
      [['logs', '--vm', '1', '--attempt', '1'], /--attempt goes with a command, not with --vm/],
      [['logs', '--vm', '9'], /no VM '9'/],
      [['logs', '--vm', '../x'], /'..\/x' is not a VM id/],
      [
        ['logs', 'failing/bad', '--since', 'yesterday'],
        /--since: 'yesterday' is neither a duration/,
      ],
      [['logs', 'failing/bad', '--boot', '1'], /--boot goes with a console/],
    ];
    for (const [args, message] of cases) {
      const run = await s.run(...args);
      expect([args.join(' '), run.code]).toEqual([args.join(' '), 2]);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('spin logs of a retried command', () => {
  it('shows each attempt with --attempt, the last lines with --tail, and JSON', async () => {
    // Fails the first time (no marker file yet), succeeds the second.
    const s = await setup(`package: retried
commands:
  flaky:
    resource: shell
    action: run
    retries: 1
    params:
      argv: [sh, -c, "if [ -e tried ]; then echo second try; else touch tried; echo first try; exit 1; fi"]
`);
    const applied = await s.run('apply', s.file, '--allow-shell', '--output', 'plain');
    expect(applied.code, applied.stdout).toBe(0);
    expect(applied.stdout).toContain('retried/flaky running (attempt 2)');

    const last = await s.run('logs', 'retried/flaky');
    expect(last.stdout).toMatch(
      /^-- started shell\.run \(attempt 2\)\nsecond try\n-- succeeded in \S+\n$/,
    );
    const first = await s.run('logs', 'retried/flaky', '--attempt', '1');
    expect(first.stdout).toMatch(
      /^-- started shell\.run \(attempt 1\)\nfirst try\n-- failed in \S+: 'sh' exited with code 1\. \[action_failed\]\n$/,
    );
    const tail = await s.run('logs', 'retried/flaky', '--tail', '2');
    expect(tail.stdout).toMatch(/^second try\n-- succeeded in \S+\n$/);
    const all = await s.run('logs', 'retried/flaky', '--since', '1h', '--tail', '5');
    expect(all.stdout).toMatch(
      /^first try\n-- failed in .*\n-- started shell\.run \(attempt 2\)\nsecond try\n-- succeeded/,
    );
    const future = await s.run('logs', 'retried/flaky', '--since', '2999-01-01');
    expect([future.code, future.stdout]).toEqual([0, '']);

    const json = expectDocument<{
      source: string;
      package: string;
      command: string;
      chunks: { attempt: number; lines: { at: string; tag: string; text: string }[] }[];
    }>('logs', (await s.run('logs', 'retried/flaky', '-o', 'json', '--attempt', '1')).stdout);
    expect(json).toMatchObject({ source: 'attempts', package: 'retried', command: 'flaky' });
    expect(json.chunks.map((c) => c.attempt)).toEqual([1]);
    const lines = json.chunks[0]?.lines ?? [];
    expect(lines.map((l) => l.tag)).toEqual(['note', 'out', 'note']);
    expect(lines[1]?.text).toBe('first try');
    expect(lines[2]?.text).toMatch(/^failed in \S+: 'sh' exited with code 1\. \[action_failed\]$/);
    expect(Number.isNaN(Date.parse(json.chunks[0]?.lines[0]?.at ?? ''))).toBe(false);
  });
});

describe('spin logs -f of a command', () => {
  it('prints lines as a new attempt writes them, and ends with exit 0 on Ctrl-C', async () => {
    const home = await testDir('spin-logs-follow-');
    const file = join(home, 'pkg.spin.yaml');
    const gate = join(home, 'gate');
    const pkg = (word: string): string => `package: slow
commands:
  step:
    resource: shell
    action: run
    params: { argv: [node, ${JSON.stringify(fake)}, --print=${word}, --wait-file=${gate}, --print=done-${word}] }
`;
    const env = { SPIN_HOME: home };
    await writeFile(gate, '');
    await writeFile(file, pkg('one'));
    expect((await spin(['apply', file, '--allow-shell', '--output', 'plain'], { env })).code).toBe(
      0,
    );

    const follow = startSpin(['logs', 'slow/step', '-f'], { env });
    onTestFinished(async () => {
      follow.signal('SIGKILL');
      await follow.done;
    });
    await follow.waitFor(/^done-one$/);
    await rm(gate);
    await writeFile(file, pkg('two'));
    const apply = startSpin(['apply', file, '--allow-shell', '--output', 'plain'], { env });
    // The new attempt's lines appear while it runs: it waits for the gate until we open it.
    await follow.waitFor(/^-- started shell\.run \(attempt 2\)$/);
    await follow.waitFor(/^waiting$/);
    expect(follow.output()).not.toContain('done-two');
    await writeFile(gate, '');
    await follow.waitFor(/^done-two$/);
    expect((await apply.done).code).toBe(0);
    await follow.waitForOutput(
      (output) => output.split('-- succeeded in').length === 3,
      'the end of attempt 2',
    );
    follow.signal('SIGINT');
    const ended = await follow.done;
    expect(ended.code).toBe(0);
    expect(ended.stdout).toMatch(
      /-- started shell\.run \(attempt 1\)\none\nwaiting\ndone-one\n-- succeeded in \S+\n-- started shell\.run \(attempt 2\)\ntwo\nwaiting\ndone-two\n-- succeeded in \S+\n$/,
    );
  });
});

describe('spin logs of commands run by the daemon', () => {
  it("keeps what the daemon's agents and a `spin agent` process ran", async () => {
    const s = await setup(failing);
    const env = { SPIN_HOME: s.home };
    onTestFinished(async () => {
      await spin(['daemon', 'stop'], { env });
    });
    expect((await spin(['daemon', 'start', '--allow-shell'], { env })).code).toBe(0);
    const applied = await s.run('apply', s.file, '--output', 'plain');
    expect(applied.stdout).toContain('broker: the spin daemon');
    expect(applied.stdout).toMatch(/failing\/bad failed .*\n {4}\| to-stdout\n {4}\| oops\n/);
    expect((await s.run('logs', 'failing/bad')).stdout).toMatch(
      /^-- started shell\.run \(attempt 1\)\nto-stdout\noops\n/,
    );

    expect((await spin(['daemon', 'stop'], { env })).code).toBe(0);
    expect((await spin(['daemon', 'start', '--no-agents'], { env })).code).toBe(0);
    const agent = startSpin(['agent', 'shell', '--allow-shell'], { env });
    onTestFinished(async () => {
      agent.signal('SIGTERM');
      await agent.done;
    });
    await agent.waitFor(/shell agent consuming local\/shell/);
    const again = await s.run('apply', s.file, '--output', 'plain');
    expect(again.code).toBe(1);
    expect((await s.run('logs', 'failing/bad')).stdout).toMatch(
      /^-- started shell\.run \(attempt 2\)\nto-stdout\noops\n/,
    );
  });
});
