import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  StateFile,
  emptyState,
  parseState,
  readState,
  serializeState,
} from '../../src/reconcile/state-file.js';
import { journalPath, type StateChange } from '../../src/reconcile/state-journal.js';
import { processAlive } from '../../src/agents/fs-util.js';
import { SpinError } from '../../src/core/errors.js';
import type { StateData } from '../../src/core/state-types.js';
import { damagedStates, soundState } from '../support/damaged-states.js';
import { killedWriter } from '../support/killed-writer.js';
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

describe('a damaged state file', () => {
  it.each(damagedStates)(
    'is refused naming the file and the field, and left as it is: $name',
    async ({ text, field }) => {
      const dir = await testDir();
      const path = join(dir, 'state.json');
      await writeFile(path, text);
      await writeFile(`${path}.backup`, serializeState(sample()));
      const error: unknown = await StateFile.open(path).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SpinError);
      expect(error).toMatchObject({ code: 'state_corrupt', exitCode: 3 });
      const { message, suggestions } = error as SpinError;
      expect(message).toContain(path);
      if (field !== '') expect(message).toContain(`${field} `);
      expect(suggestions.join('\n')).toContain(`${path}.backup`);
      expect(await readFile(path, 'utf8')).toBe(text);
      expect((await readdir(dir)).sort()).toEqual(['state.json', 'state.json.backup']);
    },
  );

  it('names a field under keys that are not identifiers so it can be found', () => {
    const text = JSON.stringify({
      ...soundState(),
      packages: {
        'my pkg': { file: 'f', appliedAt: 'a', commands: { 'a/b~c': { status: 'ok' } } },
      },
    });
    expect(() => parseState(text, 'state.json')).toThrow(
      /packages\["my pkg"\]\.commands\["a\/b~c"\]\.resource is missing/,
    );
  });

  it('is told apart from a sound one with optional fields and fields spin does not know', () => {
    const data = soundState();
    Object.assign(data.packages['demo']?.commands['volume'] ?? {}, {
      error: { code: 'action_failed', message: 'boom', details: { errno: 'EIO' } },
      observed: { entries: 0 },
      startedAt: '2026-11-22T00:00:00.500Z',
      later: 'a field of a later spin',
    });
    Object.assign(data, { later: true });
    expect(parseState(JSON.stringify(data), 'state.json')).toEqual(data);
  });
});

describe('leftovers of interrupted writes of the state', () => {
  const uuid = '0b6e2f57-2d0c-4c8e-9a51-5f1d1e7b3c11';

  it('are removed when the state is next opened; live writes and other files stay', async () => {
    const dir = await testDir();
    const path = join(dir, 'state.json');
    const first = await StateFile.open(path);
    first.data.serial = 1;
    await first.save();
    const dead = await killedWriter(dir, [
      `.state.json.{pid}.${uuid}.tmp`,
      `.state.json.{pid}.${uuid}.tmp.backup`,
    ]);
    expect(processAlive(dead)).toBe(false);
    const kept = [
      `.state.json.${String(process.pid)}.${uuid}.tmp`, // a write in flight, in this process
      '.state.json.mine.tmp',
      `.other.json.${String(dead)}.${uuid}.tmp`,
      'notes.txt',
    ];
    for (const name of kept) await writeFile(join(dir, name), 'not spin state');
    const state = await StateFile.open(path);
    expect(state.data.serial).toBe(1);
    expect((await readdir(dir)).sort()).toEqual([...kept, 'state.json'].sort());
  });

  it('are left alone when the state is refused', async () => {
    const dir = await testDir();
    const path = join(dir, 'state.json');
    await writeFile(path, '{"format": "spin-state"');
    await killedWriter(dir, [`.state.json.{pid}.${uuid}.tmp`]);
    const names = await readdir(dir);
    await expect(StateFile.open(path)).rejects.toMatchObject({ code: 'state_corrupt' });
    expect(await readdir(dir)).toEqual(names);
  });
});

describe('the journal beside the state file', () => {
  const record = (output: string): StateChange => ({
    op: 'record',
    package: 'p',
    file: 'p.spin.yaml',
    appliedAt: '2026-11-30T00:00:00.000Z',
    id: output,
    record: { ...sample().packages['vm-demo']!.commands['volume']!, output },
  });

  it('holds each result as a line until the state is written whole on close', async () => {
    const path = join(await testDir(), 'state.json');
    const state = await StateFile.open(path);
    await state.save();
    const before = await readFile(path, 'utf8');
    await state.change({ op: 'serial', serial: 1 });
    await Promise.all([state.change(record('a')), state.change(record('b'))]);
    // The file is untouched; the journal has its header and one line per change.
    expect(await readFile(path, 'utf8')).toBe(before);
    expect((await readFile(journalPath(path), 'utf8')).trim().split('\n')).toHaveLength(4);
    // What a process killed now leaves is read back whole, with or without the lock.
    for (const data of [(await StateFile.open(path)).data, await readState(path)]) {
      expect(data?.serial).toBe(1);
      expect(Object.keys(data?.packages['p']?.commands ?? {})).toEqual(['a', 'b']);
    }
    await state.close();
    const written = parseState(await readFile(path, 'utf8'), path);
    expect(Object.keys(written.packages['p']?.commands ?? {})).toEqual(['a', 'b']);
    await expect(readFile(journalPath(path))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('stops at a line cut short, and the next writer folds what is whole into the file', async () => {
    const path = join(await testDir(), 'state.json');
    const state = await StateFile.open(path);
    await state.save();
    await state.change(record('a'));
    await writeFile(journalPath(path), '{"seq":2,"op":"forg', { flag: 'a' });
    const reopened = await StateFile.open(path);
    expect(Object.keys(reopened.data.packages['p']?.commands ?? {})).toEqual(['a']);
    await reopened.change(record('b'));
    // The first change after opening wrote the state whole, then began a journal of its own.
    const written = parseState(await readFile(path, 'utf8'), path);
    expect(Object.keys(written.packages['p']?.commands ?? {})).toEqual(['a', 'b']);
    expect(written.journalSeq).toBe(2);
  });

  it('never applies changes the file already holds, nor a journal of another state', async () => {
    const dir = await testDir();
    const path = join(dir, 'state.json');
    const state = await StateFile.open(path);
    await state.save();
    await state.change(record('a'));
    const journal = await readFile(journalPath(path), 'utf8');
    await state.change({ op: 'forget', package: 'p', id: 'a' });
    await state.save();
    // Killed after the file was written whole but before the journal was removed: the
    // record forgotten since must not come back.
    await writeFile(journalPath(path), journal);
    expect((await StateFile.open(path)).data.packages).toEqual({});
    // A state begun afresh (a new lineage) does not take the old one's journal.
    await writeFile(path, serializeState(emptyState()));
    expect((await StateFile.open(path)).data.packages).toEqual({});
  });

  it('refuses a journal whose changes break the state, naming it, with exit 3', async () => {
    const path = join(await testDir(), 'state.json');
    const state = await StateFile.open(path);
    await state.save();
    const bad = { ...record('a'), record: { status: 'done' } };
    await writeFile(
      journalPath(path),
      `${JSON.stringify({ format: 'spin-state-journal', lineage: state.data.lineage, after: 0 })}\n${JSON.stringify({ seq: 1, ...bad })}\n`,
    );
    const error: unknown = await StateFile.open(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SpinError);
    expect((error as SpinError).code).toBe('state_corrupt');
    expect((error as SpinError).message).toContain(journalPath(path));
    expect((error as SpinError).message).toContain('packages.p.commands.a');
  });
});
