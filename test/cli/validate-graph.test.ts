import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, spin, tempDir } from '../support/spin-cli.js';

const valid = (name: string, extra = ''): string => `package: ${name}
commands:
  vol: { resource: storage, action: add_volume, params: { path: data } }
  img:
    resource: storage
    action: create_image
    needs: [vol]
    params: { volume: data, image: disk.raw, image_size: 1 }
${extra}`;

describe('spin validate', () => {
  it('accepts the shipped examples and says what it loaded', async () => {
    const run = await spin(['validate', 'examples']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('ok  vm-demo (4 commands)  examples/vm.spin.yaml');
    expect(run.stdout).toContain('ok  two-vms (8 commands)  examples/two-vms.spin.yaml');
    expect(run.stdout).toContain('ok  scratch-storage (5 commands)  examples/storage.spin.yaml');
  });

  it('reports every problem with file:line:column and the field, and exits 2', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bad.spin.yaml');
    await writeFile(
      file,
      `package: bad
commands:
  image:
    resource: storage
    action: create_image
    params: { volume: test, image: disk.raw, image_size: 0 }
  vm:
    resource: emulation
    action: write_confg
    params: {}
`,
    );
    const run = await spin(['validate', file]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      `${file}:6:58 commands.image.params.image_size: must be an integer from 1 to 65536`,
    );
    expect(run.stderr).toContain(
      `${file}:9:13 commands.vm.action: unknown action 'write_confg' of resource emulation`,
    );
    expect(run.stderr).toContain("did you mean 'write_config'?");
    expect(run.stderr.trimEnd().split('\n').at(-1)).toBe('2 problems in 1 of 1 file');
  });

  it('prints diagnostics as JSON with --json', async () => {
    const dir = await tempDir();
    const file = join(dir, 'cycle.spin.yaml');
    await writeFile(
      file,
      `package: cyc
commands:
  a: { resource: storage, action: add_volume, params: { path: a }, needs: [b] }
  b: { resource: storage, action: add_volume, params: { path: b }, needs: [a] }
`,
    );
    const run = await spin(['validate', '--json', file]);
    expect(run.code).toBe(2);
    const out = JSON.parse(run.stdout) as {
      valid: boolean;
      diagnostics: {
        line: number;
        column: number;
        path: string;
        message: string;
        reason: string;
      }[];
    };
    expect(out.valid).toBe(false);
    expect(out.diagnostics).toEqual([
      {
        file,
        line: 3,
        column: 76,
        path: 'commands.a.needs[0]',
        message: 'dependency cycle: a → b → a',
        reason: 'cycle',
      },
    ]);
  });

  it('loads a directory recursively in a stable order and rejects a package defined twice', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'nested'));
    await writeFile(join(dir, 'b.spin.yaml'), valid('one'));
    await writeFile(join(dir, 'nested', 'a.spin.yaml'), valid('two'));
    await writeFile(join(dir, 'ignored.yaml'), 'not: a package');
    const ok = await spin(['validate', dir]);
    expect(ok.code).toBe(0);
    expect(
      ok.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/)[1]),
    ).toEqual(['one', 'two']);

    await writeFile(join(dir, 'nested', 'c.spin.yaml'), valid('one'));
    const dup = await spin(['validate', dir]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toContain(
      `${join(dir, 'nested', 'c.spin.yaml')}:1:1 package: package 'one' is already defined in ${join(dir, 'b.spin.yaml')}`,
    );
  });

  it('refuses a file over the size cap before parsing it', async () => {
    const dir = await tempDir();
    const file = join(dir, 'big.spin.yaml');
    await writeFile(file, valid('big', '# ' + 'x'.repeat(2000) + '\n'));
    const run = await spin(['validate', '--max-bytes', '1000', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /big\.spin\.yaml:1:1 file is \d+ bytes, over the limit of 1000 \(raise it with --max-bytes\)/,
    );
    expect((await spin(['validate', '--max-bytes', '100000', file])).code).toBe(0);
  });

  it('exits 2 for a missing path and for bad usage', async () => {
    const missing = await spin(['validate', 'no/such/file.spin.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no/such/file.spin.yaml:1:1 no such file or directory');
    const usage = await spin(['validate']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/Missing 1 required arg/);
    const flag = await spin(['validate', '--nope', 'examples']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('Nonexistent flag: --nope');
  });
});

describe('spin graph', () => {
  it('prints the run order grouped by resource', async () => {
    const run = await spin(['graph', 'examples/vm.spin.yaml']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`package vm-demo (4 commands, examples/vm.spin.yaml)

storage:
  1. volume (add_volume)
  2. image (create_image)  ← volume

emulation:
  3. config (write_config)  ← image
  4. start (start)  ← config
`);
  });

  it('draws mermaid and dot', async () => {
    const mermaid = await spin(['graph', 'examples/two-vms.spin.yaml', '--format', 'mermaid']);
    expect(mermaid.code).toBe(0);
    expect(mermaid.stdout).toMatch(/^flowchart TD\n {2}subgraph storage\n/);
    expect(mermaid.stdout).toContain('  subgraph emulation\n');
    expect(mermaid.stdout).toContain('c0 --> c1'); // volume → base
    const dot = await spin(['graph', 'examples/two-vms.spin.yaml', '--format', 'dot']);
    expect(dot.stdout).toContain('subgraph "cluster_storage"');
    expect(dot.stdout).toContain('"db" -> "web";');
  });

  it('refuses an invalid package with its diagnostics and exit 2', async () => {
    const dir = await tempDir();
    const file = join(dir, 'x.spin.yaml');
    await writeFile(
      file,
      'package: x\ncommands:\n  a: { resource: storage, action: add_volume, params: { path: "../up" } }\n',
    );
    const run = await spin(['graph', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${file}:3:63 commands.a.params.path: must not contain '..'`);
  });
});

describe('spin --help and --version', () => {
  it('prints the version', async () => {
    const run = await spin(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^spin\/\d+\.\d+\.\d+ linux-x64 node-v\d+/);
  });

  it('lists the commands and shows examples per command', async () => {
    const run = await spin(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('validate');
    expect(run.stdout).toContain('graph');
    const one = await spin(['validate', '--help']);
    expect(one.stdout).toContain('EXAMPLES');
    expect(one.stdout).toContain('$ spin validate packages/');
  });
});

describe('spin schema', () => {
  it('prints the schema editors use, the one the repository publishes', async () => {
    const run = await spin(['schema']);
    expect(run.code).toBe(0);
    const published = await readFile(join(repoRoot, 'schemas', 'package.schema.json'), 'utf8');
    expect(JSON.parse(run.stdout)).toEqual(JSON.parse(published));
  });
});
