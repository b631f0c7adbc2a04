import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { SpinError } from '../core/errors.js';
import type { StateData } from '../core/state-types.js';
import { errnoOf, processAlive } from '../agents/fs-util.js';
import { stateProblems } from './state-schema.js';
import {
  applyChange,
  journalPath,
  replayJournal,
  StateJournal,
  syncDirectory,
  type StateChange,
} from './state-journal.js';

/**
 * lowdb's storage for the state file, written so that a crash at any moment leaves either the
 * old file or the new one, never a mix: the new text goes to a temporary file that is fsynced,
 * the current file is kept as `<file>.backup` (by a hard link, so the name never points
 * nowhere), the temporary file is renamed over the current one, and the directory is fsynced.
 * The temporary file is named `.<file>.<pid>.<uuid>.tmp` so that one a killed writer left can be
 * told from one being written (see `clearStaleStateTemps`). Reading refuses a file that is not
 * a sound spin state file (exit 3, see `parseState`) rather than overwrite it.
 */
export class DurableStateAdapter implements Adapter<StateData> {
  /** The length of the file as last read or written. */
  bytes = 0;

  constructor(readonly path: string) {}

  async read(): Promise<StateData | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    this.bytes = text.length;
    return parseState(text, this.path);
  }

  /**
   * Writes the state durably. A write that fails leaves the previous file as it was and no temp
   * file behind; a full disk is `no_space` naming the file.
   */
  async write(data: StateData): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = join(dir, `.${basename(this.path)}.${String(process.pid)}.${randomUUID()}.tmp`);
    try {
      await this.#replace(data, temp);
    } catch (error) {
      await rm(temp, { force: true });
      throw writeFailure(error, this.path);
    }
  }

  async #replace(data: StateData, temp: string): Promise<void> {
    const dir = dirname(this.path);
    const handle = await open(temp, 'wx', 0o600);
    try {
      const text = serializeState(data);
      this.bytes = text.length;
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    const backupTemp = `${temp}.backup`;
    await link(this.path, backupTemp).then(
      () => rename(backupTemp, `${this.path}.backup`),
      (error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      },
    );
    await rename(temp, this.path);
    await syncDirectory(dir);
  }
}

/** Why a state write failed, as the user should read it; the previous state is intact. */
function writeFailure(error: unknown, path: string): unknown {
  const code = errnoOf(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new SpinError('no_space', `The disk holding the state file ${path} is full.`, {
      cause: error,
      retryable: true,
      suggestions: [
        'Free space on that disk and run the command again: the state as it was before this write is intact.',
      ],
    });
  }
  return error;
}

/**
 * Parses and checks state text: JSON, then the state schema (state-schema.ts), before any field
 * is read. A file of another kind, a newer version or any structural damage is SpinError
 * `state_corrupt` (exit 3) whose message names the file and the first damaged field, and whose
 * suggestions say how to get back the previous version (`<file>.backup`); never a TypeError.
 */
export function parseState(text: string, path: string): StateData {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    const reason = (error as Error).message.replace(/\s+/g, ' ');
    throw corrupt(path, `is corrupt: not valid JSON (${reason})`, {});
  }
  const isObject = typeof data === 'object' && data !== null && !Array.isArray(data);
  const d = (isObject ? data : {}) as Record<string, unknown>;
  if (d['format'] !== 'spin-state') {
    const what = isObject
      ? `format must be "spin-state" (it is ${shown(d['format'])})`
      : `it holds ${shown(data)}, not a JSON object`;
    throw new SpinError('state_corrupt', `${path} is not a spin state file: ${what}`, {
      details: { path, field: isObject ? 'format' : '' },
      suggestions: ['pass the right file with --state', ...backupHints(path)],
    });
  }
  const version = d['version'];
  if (typeof version === 'number' && Number.isInteger(version) && version > 1) {
    throw new SpinError(
      'state_corrupt',
      `state file ${path} has version ${String(version)}; this spin reads version 1`,
      {
        details: { path, field: 'version' },
        suggestions: ['use the spin that wrote it, or a newer one'],
      },
    );
  }
  const problems = stateProblems(data);
  const first = problems[0];
  if (first !== undefined) {
    const listed = problems.slice(0, 3).map((p) => `${p.field} ${p.message}`);
    if (problems.length > 3) listed.push(`${String(problems.length - 3)} more`);
    throw corrupt(path, `is corrupt: ${listed.join('; ')}`, {
      field: first.field,
      fields: problems.map((p) => p.field),
    });
  }
  return data as StateData;
}

function corrupt(path: string, what: string, details: Record<string, unknown>): SpinError {
  return new SpinError('state_corrupt', `state file ${path} ${what}`, {
    details: { path, ...details },
    suggestions: backupHints(path),
  });
}

/** How to recover: spin keeps the version before the last write next to the file. */
function backupHints(path: string): string[] {
  const backup = `${path}.backup`;
  const afresh = `move ${path} away to start afresh (spin then forgets what it applied)`;
  // Only on the way to an error, so a synchronous look costs nothing that matters.
  return existsSync(backup)
    ? [
        `the version before the last write is kept in ${backup}: check it with \`spin status --state ${backup}\`, then copy it over ${path}`,
        `or ${afresh}`,
      ]
    : [`there is no backup (${backup}); repair the file by hand, or ${afresh}`];
}

/** A value for a message: short JSON, or its kind when long. */
function shown(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value);
  if (text.length <= 40) return text;
  return Array.isArray(value) ? 'an array' : `a long ${typeof value}`;
}

/** A journal longer than this, and than the state file, is folded into the file. */
const journalFoldBytes = 8 * 1024 * 1024;

/**
 * The state file, open, by the one process that holds its lock: the data in memory, and two ways
 * to make changes durable. `change` records one change (a command's result) as a line of the
 * journal beside the file (state-journal.ts): changes that arrive together share one write and
 * one fdatasync, and each costs its own size, not the size of the state. `save` writes the file
 * whole, which folds the journal in; `close` does that once if anything was journaled, and a
 * journal that grows past the file does it on the way. Writes run one at a time, at most one
 * waiting, and each resolves once what it was called for is on disk.
 */
export class StateFile {
  readonly #db: Low<StateData>;
  readonly #adapter: DurableStateAdapter;
  readonly #journal: StateJournal;
  /** The number of the last change made in memory. */
  #seq: number;
  /** A journal was found on opening: it is folded into the file before the next change. */
  #foldFirst: boolean;
  /** The number of the last change the file on disk holds. */
  #foldedSeq: number;
  #io: Promise<void> = Promise.resolve();
  #next: { whole: boolean; promise: Promise<void> } | undefined;

  private constructor(db: Low<StateData>, adapter: DurableStateAdapter, foundJournal: boolean) {
    this.#db = db;
    this.#adapter = adapter;
    this.#journal = new StateJournal(adapter.path);
    this.#seq = db.data.journalSeq ?? 0;
    this.#foldedSeq = this.#seq;
    this.#foldFirst = foundJournal;
  }

  /**
   * Reads the state at `path` (an empty one when there is no file) with the changes its journal
   * holds, and then removes the temporary files of earlier writes to it whose writer is no longer
   * alive (see `clearStaleStateTemps`). A file refused by `parseState` leaves the directory as it
   * was.
   */
  static async open(path: string): Promise<StateFile> {
    const adapter = new DurableStateAdapter(path);
    const db = new Low(adapter, emptyState());
    await db.read();
    const { exists } = await replayJournalChecked(path, db.data);
    await clearStaleStateTemps(path);
    return new StateFile(db, adapter, exists);
  }

  get data(): StateData {
    return this.#db.data;
  }

  /** Makes one change in memory and records it; resolves once it is durable. */
  change(change: StateChange): Promise<void> {
    applyChange(this.#db.data, change);
    this.#seq += 1;
    this.#journal.append(this.#seq, change);
    return this.#schedule(false);
  }

  /** Writes the whole state durably, folding the journal in; concurrent calls share writes. */
  save(): Promise<void> {
    return this.#schedule(true);
  }

  /**
   * Writes the file whole if changes were made since it last was: the end of a run folds its
   * journal in, so the file alone says what the run did.
   */
  async fold(): Promise<void> {
    await this.#io;
    if (this.#seq > this.#foldedSeq) await this.save();
  }

  /** Folds the journal in (see `fold`), then lets go of it. */
  async close(): Promise<void> {
    await this.fold();
    await this.#io;
    await this.#journal.close();
  }

  #schedule(whole: boolean): Promise<void> {
    if (this.#next !== undefined) {
      this.#next.whole ||= whole;
      return this.#next.promise;
    }
    const next = { whole, promise: Promise.resolve() };
    next.promise = this.#io.then(() => {
      this.#next = undefined;
      return this.#write(next.whole);
    });
    this.#next = next;
    this.#io = next.promise.catch(() => undefined);
    return next.promise;
  }

  async #write(whole: boolean): Promise<void> {
    const folds =
      whole ||
      this.#foldFirst ||
      this.#journal.bytes > Math.max(journalFoldBytes, this.#adapter.bytes);
    if (!folds) {
      try {
        await this.#journal.flush(this.#db.data.lineage, this.#db.data.journalSeq ?? 0);
      } catch (error) {
        // The journal may end in part of a line now: what comes next is written whole.
        this.#foldFirst = true;
        throw writeFailure(error, this.#adapter.path);
      }
      return;
    }
    const seq = this.#seq;
    this.#db.data.journalSeq = seq;
    await this.#db.write();
    this.#foldedSeq = seq;
    this.#foldFirst = false;
    // Every change so far is in the file now; any made since the write began stays queued.
    await this.#journal.discard(seq);
  }
}

/** `replayJournal`, then the schema check of what the changes made, naming the journal. */
async function replayJournalChecked(
  path: string,
  data: StateData,
): Promise<{ exists: boolean; applied: number }> {
  const replayed = await replayJournal(path, data);
  if (replayed.applied === 0) return replayed;
  const first = stateProblems(data)[0];
  if (first !== undefined) {
    throw corrupt(journalPath(path), `is corrupt: ${first.field} ${first.message}`, {
      field: first.field,
    });
  }
  return replayed;
}

/**
 * Reads a state file without its lock, with the changes its journal holds: what `spin status`
 * shows while an apply runs. The file and its journal are each written so that a reader sees a
 * whole version of each, and a journal that does not continue the file read is not applied.
 */
export async function readState(path: string): Promise<StateData | null> {
  const data = await new DurableStateAdapter(path).read();
  if (data === null) return null;
  await replayJournalChecked(path, data);
  return data;
}

/**
 * Removes the leftovers of writes to the state file at `path` that were interrupted (kill -9,
 * power loss): files named as DurableStateAdapter names its temporary files and their backup
 * links (`.<file>.<pid>.<uuid>.tmp[.backup]`) whose writer pid is no longer alive. Nothing else
 * in the directory is touched, nor the temporary file of a live writer. Returns the names removed.
 */
export async function clearStaleStateTemps(path: string): Promise<string[]> {
  const dir = dirname(path);
  const own = new RegExp(
    `^\\.${escapeRegExp(basename(path))}\\.([1-9][0-9]{0,9})\\.[0-9a-f-]{36}\\.tmp(?:\\.backup)?$`,
  );
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return [];
    throw error;
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const writer = own.exec(entry.name)?.[1];
    if (!entry.isFile() || writer === undefined || processAlive(Number(writer))) continue;
    await rm(join(dir, entry.name), { force: true });
    removed.push(entry.name);
  }
  return removed;
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

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
    ...(data.journalSeq === undefined
      ? []
      : [`  "journalSeq": ${JSON.stringify(data.journalSeq)},`]),
  ].join('\n');
  const body = packages.length > 0 ? `{\n${packages.join(',\n')}\n  }` : '{}';
  return `${head}\n  "packages": ${body}\n}\n`;
}
