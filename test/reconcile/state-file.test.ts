import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  StateFile,
  emptyState,
  parseState,
  serializeState,
} from '../../src/reconcile/state-file.js';
import type { StateData } from '../../src/core/state-types.js';
import { testDir } from '../support/spin-cli.js';

const sample = (): StateData => ({
  ...emptyState(),
  serial: 3,
  packages: {
    'vm-demo': {
      file: 'examples/vm.spin.yaml',
      appliedAt: '2026-11-22T00:00:00.000Z',
      commands: {
        volume: {
          resource: 'storage',
          action: 'add_volume',
          node: 'local',
          params: { path: 'test', 'odd "key"': ['a\nb'] },
          needs: [],
          specHash: 'abc',
          status: 'succeeded',
          attempts: 1,
          output: 'volume test created\n',
          serial: 3,
          finishedAt: '2026-11-22T00:00:01.000Z',
        },
      },
    },
    empty: { file: 'x.spin.yaml', appliedAt: '2026-11-22T00:00:00.000Z', commands: {} },
  },
});

describe('the state file', () => {
  it('serializes to JSON that reads back the same, a command per line', () => {
    const data = sample();
    const text = serializeState(data);
    expect(JSON.parse(text)).toEqual(data);
    expect(text.split('\n').filter((l) => l.includes('"specHash"'))).toHaveLength(1);
    expect(JSON.parse(serializeState(emptyState()))).toMatchObject({
      format: 'spin-state',
      packages: {},
    });
  });

  it('writes atomically and keeps the previous version as a backup', async () => {
    const path = join(await testDir(), 'state.json');
    const state = await StateFile.open(path);
    state.data.serial = 1;
    await state.save();
    state.data.serial = 2;
    await state.save();
    expect(parseState(await readFile(path, 'utf8'), path).serial).toBe(2);
    expect(parseState(await readFile(`${path}.backup`, 'utf8'), path).serial).toBe(1);
    // Saves asked for together share writes, and the last one written holds the latest data.
    state.data.serial = 3;
    const saves = [state.save(), state.save()];
    state.data.serial = 4;
    saves.push(state.save());
    await Promise.all(saves);
    expect(parseState(await readFile(path, 'utf8'), path).serial).toBe(4);
    expect((await StateFile.open(path)).data.lineage).toBe(state.data.lineage);
  });

  it('refuses a corrupt, foreign or newer file with exit 3', async () => {
    const path = join(await testDir(), 'state.json');
    for (const text of [
      '{"serial": ',
      '{"version": 4}',
      JSON.stringify({ ...emptyState(), version: 2 }),
    ]) {
      await writeFile(path, text);
      await expect(StateFile.open(path)).rejects.toMatchObject({
        code: 'state_corrupt',
        exitCode: 3,
      });
    }
  });
});
