import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LspClient } from '../support/lsp-client.js';
import { repoRoot } from '../support/spin-cli.js';

interface Diagnostic {
  message: string;
  range: { start: { line: number; character: number } };
}
interface CompletionItem {
  label: string;
}
interface Hover {
  contents: { kind?: string; value: string } | string;
}

const schemaUri = pathToFileURL(join(repoRoot, 'schemas/package.schema.json')).href;
let server: LspClient;
let opened = 0;

/** Opens `text` as a new package file and returns its URI and the diagnostics published for it. */
async function open(
  text: string,
  path = join(repoRoot, `editor-test-${String(++opened)}.spin.yaml`),
): Promise<{ uri: string; diagnostics: Diagnostic[] }> {
  const uri = pathToFileURL(path).href;
  const published = server.diagnostics(uri);
  server.notify('textDocument/didOpen', {
    textDocument: { uri, languageId: 'yaml', version: 1, text },
  });
  return { uri, diagnostics: (await published) as Diagnostic[] };
}

async function completions(uri: string, line: number, character: number): Promise<string[]> {
  const result = await server.request<{ items: CompletionItem[] } | CompletionItem[]>(
    'textDocument/completion',
    { textDocument: { uri }, position: { line, character } },
  );
  const items = Array.isArray(result) ? result : result.items;
  return items.map((i) => i.label);
}

const messages = (diagnostics: Diagnostic[]): string[] =>
  diagnostics.map((d) => `${String(d.range.start.line + 1)}: ${d.message}`);

beforeAll(async () => {
  server = new LspClient(
    process.execPath,
    [join(repoRoot, 'node_modules/yaml-language-server/bin/yaml-language-server'), '--stdio'],
    {
      yaml: {
        schemas: { [schemaUri]: '*.spin.yaml' },
        validate: true,
        completion: true,
        hover: true,
        format: { enable: false },
      },
    },
  );
  await server.request('initialize', {
    processId: process.pid,
    rootUri: pathToFileURL(repoRoot).href,
    capabilities: {
      workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: false } },
      textDocument: {
        completion: { completionItem: { snippetSupport: false } },
        hover: { contentFormat: ['markdown', 'plaintext'] },
        publishDiagnostics: {},
      },
    },
  });
  server.notify('initialized', {});
  server.notify('workspace/didChangeConfiguration', { settings: server.settings });
});

afterAll(async () => {
  await server.close();
});

describe('the published schema in the real YAML language server', () => {
  it('finds nothing wrong in the examples', async () => {
    for (const example of ['vm.spin.yaml', 'storage.spin.yaml', 'two-vms.spin.yaml']) {
      // Where they are, so that their own `$schema` line (a relative path) finds the schema.
      const path = join(repoRoot, 'examples', example);
      const { diagnostics } = await open(await readFile(path, 'utf8'), path);
      expect(messages(diagnostics), example).toEqual([]);
    }
  });

  it('flags a typo in a resource, an unknown action, a missing param and a wrong type, at their lines', async () => {
    const { diagnostics } = await open(
      [
        'package: editor',
        'commands:',
        '  typo:',
        '    resource: storge',
        '    action: add_volume',
        '    params: { path: data }',
        '  unknown:',
        '    resource: storage',
        '    action: add_volumes',
        '    params: { path: data }',
        '  missing:',
        '    resource: storage',
        '    action: create_image',
        '    params: { volume: data, image: d.raw }',
        '  wrong:',
        '    resource: emulation',
        '    action: start',
        '    params: { id: 1, ready_timeout: soon }',
        '',
      ].join('\n'),
    );
    expect(messages(diagnostics).sort()).toEqual([
      '14: Missing property "image_size".',
      '18: String does not match the pattern of "^[0-9]{1,9}(ms|s|m|h)$".',
      '4: Value is not accepted. Valid values: "storage", "emulation", "shell".',
      '9: Value is not accepted. Valid values: "add_volume", "remove_volume", "create_image", "delete_image", "copy_image", "resize_image".',
    ]);
  });

  it('completes resources, then the actions of the resource chosen', async () => {
    const { uri } = await open(
      ['package: editor', 'commands:', '  a:', '    resource: ', '    action: ', ''].join('\n'),
    );
    expect(await completions(uri, 3, 14)).toEqual(
      expect.arrayContaining(['storage', 'emulation', 'shell']),
    );
    const storage = await open(
      ['package: editor', 'commands:', '  a:', '    resource: storage', '    action: ', ''].join(
        '\n',
      ),
    );
    const actions = await completions(storage.uri, 4, 12);
    expect(actions).toEqual(
      expect.arrayContaining(['add_volume', 'create_image', 'copy_image', 'resize_image']),
    );
    expect(actions).not.toContain('start');
  });

  it('explains a param on hover', async () => {
    const { uri } = await open(
      [
        'package: editor',
        'commands:',
        '  disk:',
        '    resource: storage',
        '    action: create_image',
        '    params: { volume: data, image: d.raw, image_size: 1 }',
        '',
      ].join('\n'),
    );
    const hover = await server.request<Hover | null>('textDocument/hover', {
      textDocument: { uri },
      position: { line: 5, character: 45 },
    });
    const text =
      typeof hover?.contents === 'string' ? hover.contents : (hover?.contents.value ?? '');
    expect(text).toContain('Size in GiB');
  });
});
