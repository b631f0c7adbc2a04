import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { fileAppears } from '../support/file-appears.js';
import { spin, startSpin, testDir } from '../support/spin-cli.js';

const fake = new URL('../fixtures/fake-program.js', import.meta.url).pathname;

/**
 * A package whose middle command waits on a file the test never writes until the end: Ctrl-C
 * comes while it runs, with one command done before it and one waiting behind it.
 */
async function packageThatWaits(): Promise<{
  home: string;
  file: string;
  ready: string;
  gate: string;
}> {
  const home = await testDir('spin-interrupt-');
  const [ready, gate] = [join(home, 'ready'), join(home, 'gate')];
  const file = join(home, 'pkg.spin.yaml');
  await writeFile(
    file,
    `package: stop
commands:
  vol: { resource: storage, action: add_volume, params: { path: data } }
  wait: { resource: shell, action: run, needs: [vol], params: { argv: [node, ${JSON.stringify(fake)}, --ready-file=${ready}, --wait-file=${gate}] } }
  after: { resource: storage, action: add_volume, needs: [wait], params: { path: more } }
`,
  );
  return { home, file, ready, gate };
}

describe('Ctrl-C during spin apply', () => {
  for (const output of ['plain', 'tty']) {
    it(`with --output ${output}: exits 1 with the summary and writes what was cancelled to the state`, async () => {
      const { home, file, ready, gate } = await packageThatWaits();
      const env = { SPIN_HOME: home };
      const apply = startSpin(['apply', file, '--allow-shell', '--output', output], { env });
      onTestFinished(async () => {
        apply.signal('SIGKILL');
        await apply.done;
      });
      await fileAppears(ready, apply.done);
      apply.signal('SIGINT');
      const end = await apply.done;
      expect(end.code, end.stdout + end.stderr).toBe(1);
      expect(end.stdout).toMatch(/Apply interrupted: 1 succeeded, 2 cancelled\./);
      const state = JSON.parse(await readFile(join(home, 'state.json'), 'utf8')) as {
        packages: Record<string, { commands: Record<string, { status: string }> }>;
      };
      const statuses = Object.entries(state.packages['stop']?.commands ?? {}).map(
        ([id, c]) => `${id} ${c.status}`,
      );
      expect(statuses.sort()).toEqual(['after cancelled', 'vol succeeded', 'wait cancelled']);
      // The next apply carries on from there.
      await writeFile(gate, '');
      const again = await spin(['apply', file, '--allow-shell', '--output', 'plain'], { env });
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toMatch(/Apply complete: 2 succeeded/);
    });
  }
});

describe('a package too large for a line per command', () => {
  it('names in the terminal what failed and what it skipped, with reasons', async () => {
    const home = await testDir('spin-large-');
    const file = join(home, 'big.spin.yaml');
    const lines = ['package: big', 'commands:'];
    lines.push(
      `  broken: { resource: shell, action: run, params: { argv: [node, ${JSON.stringify(fake)}, --fail=3] } }`,
    );
    for (let i = 0; i < 28; i++) {
      lines.push(
        `  v${String(i)}: { resource: storage, action: add_volume, params: { path: v${String(i)} } }`,
      );
    }
    lines.push(
      '  after: { resource: storage, action: add_volume, needs: [broken], params: { path: x } }',
    );
    await writeFile(file, `${lines.join('\n')}\n`);
    const run = await spin(['apply', file, '--allow-shell', '--output', 'tty'], {
      env: { SPIN_HOME: home },
    });
    expect(run.code).toBe(1);
    const shown = run.stdout + run.stderr;
    expect(shown).toMatch(/broken failed: .*exited with code 3/);
    expect(shown).toMatch(/after skipped: needs .broken., which failed/);
    expect(shown).toMatch(/Apply finished with failures: 28 succeeded, 1 failed, 1 skipped\./);
  });
});
