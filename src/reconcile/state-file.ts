import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { SpinError } from '../core/errors.js';
import type { StateData } from '../core/state-types.js';

/**
 * lowdb's storage for the state file, written so that a crash at any moment leaves either the
 * old file or the new one, never a mix: the new text goes to a temporary file that is fsynced,
 * the current file is kept as `<file>.backup` (by a hard link, so the name never points
 * nowhere), the temporary file is renamed over the current one, and the directory is fsynced.
 * Reading refuses a file that is not a spin state file (exit 3) rather than overwrite it.
 */
export class DurableStateAdapter implements Adapter<StateData> {
  constructor(readonly path: string) {}

  async read(): Promise<StateData | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    return parseState(text, this.path);
  }

  async write(data: StateData): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = join(dir, `.${basename(this.path)}.${String(process.pid)}.${randomUUID()}.tmp`);
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(serializeState(data));
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      const backupTemp = `${temp}.backup`;
      await link(this.path, backupTemp).then(
        () => rename(backupTemp, `${this.path}.backup`),
        (error: unknown) => {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        },
      );
      await rename(temp, this.path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }
}

/** Parses and checks state text; a file of another kind or a damaged one is a conflict (3). */
export function parseState(text: string, path: string): StateData {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new SpinError(
      'state_corrupt',
      `state file ${path} is corrupt: ${(error as Error).message}`,
      {
        suggestions: [`restore it from ${path}.backup, or move it away to start afresh`],
      },
    );
  }
  const d = data as Record<string, unknown> | null;
  if (d === null || typeof d !== 'object' || d.format !== 'spin-state') {
    throw new SpinError('state_corrupt', `${path} is not a spin state file`, {
      suggestions: ['pass the right file with --state'],
    });
  }
  if (d.version !== 1) {
    throw new SpinError(
      'state_corrupt',
      `state file ${path} has version ${String(d.version)}; this spin reads version 1`,
    );
  }
  if (
    typeof d.lineage !== 'string' ||
    typeof d.serial !== 'number' ||
    d.packages === null ||
    typeof d.packages !== 'object'
  ) {
    throw new SpinError(
      'state_corrupt',
      `state file ${path} is corrupt: missing lineage, serial or packages`,
      {
        suggestions: [`restore it from ${path}.backup, or move it away to start afresh`],
      },
    );
  }
  return d as unknown as StateData;
}

/**
 * The state file, open: the data in memory and durable saves that coalesce. `save()` after each
 * command result costs at most one write in flight and one queued, whatever the rate of
 * results, and resolves once the data it was called with is on disk.
 */
export class StateFile {
  readonly #db: Low<StateData>;
  #writing: Promise<void> | undefined;
  #queued: Promise<void> | undefined;

  private constructor(db: Low<StateData>) {
    this.#db = db;
  }

  static async open(path: string): Promise<StateFile> {
    const db = new Low(new DurableStateAdapter(path), emptyState());
    await db.read();
    return new StateFile(db);
  }

  get data(): StateData {
    return this.#db.data;
  }

  /** Writes the current data durably; concurrent calls share writes. */
  save(): Promise<void> {
    if (this.#writing === undefined) {
      this.#writing = this.#db.write().finally(() => {
        this.#writing = undefined;
      });
      return this.#writing;
    }
    this.#queued ??= this.#writing.then(() => {
      this.#queued = undefined;
      return this.save();
    });
    return this.#queued;
  }
}

/** A new, empty state with a fresh lineage. */
export function emptyState(): StateData {
  return { format: 'spin-state', version: 1, lineage: randomUUID(), serial: 0, packages: {} };
}

const recordText = new WeakMap<object, string>();

/**
 * The state as text: indented down to the commands, each command's record on one line. Records
 * are replaced, never changed in place, so each one's text is made once and reused: writing the
 * state after every result costs a join, not a stringify of everything applied so far, and the
 * file still reads (and diffs) a command per line.
 */
export function serializeState(data: StateData): string {
  const packages = Object.entries(data.packages).map(([name, pkg]) => {
    const commands = Object.entries(pkg.commands).map(([id, record]) => {
      let text = recordText.get(record);
      if (text === undefined) {
        text = JSON.stringify(record);
        recordText.set(record, text);
      }
      return `        ${JSON.stringify(id)}: ${text}`;
    });
    const body = commands.length > 0 ? `{\n${commands.join(',\n')}\n      }` : '{}';
    return [
      `    ${JSON.stringify(name)}: {`,
      `      "file": ${JSON.stringify(pkg.file)},`,
      `      "appliedAt": ${JSON.stringify(pkg.appliedAt)},`,
      `      "commands": ${body}`,
      '    }',
    ].join('\n');
  });
  const head = [
    '{',
    `  "format": ${JSON.stringify(data.format)},`,
    `  "version": ${JSON.stringify(data.version)},`,
    `  "lineage": ${JSON.stringify(data.lineage)},`,
    `  "serial": ${JSON.stringify(data.serial)},`,
  ].join('\n');
  const body = packages.length > 0 ? `{\n${packages.join(',\n')}\n  }` : '{}';
  return `${head}\n  "packages": ${body}\n}\n`;
}
