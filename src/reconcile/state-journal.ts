import { writeSync } from 'node:fs';
import { open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CommandRecord, StateData } from '../core/state-types.js';
import { errnoOf } from '../agents/fs-util.js';

/**
 * One change to the state, as the journal holds it. Each one sets or removes a whole command
 * record, so applying a change twice gives what applying it once gives, and the state is the
 * same whether it was built by the changes as they happened or by replaying them from the file.
 */
export type StateChange =
  | { op: 'serial'; serial: number }
  | {
      op: 'record';
      package: string;
      file: string;
      appliedAt: string;
      id: string;
      record: CommandRecord;
    }
  /** The record goes; its package goes with its last record. */
  | { op: 'forget'; package: string; id: string };

/** Applies one change to the state data in memory. */
export function applyChange(data: StateData, change: StateChange): void {
  switch (change.op) {
    case 'serial':
      data.serial = change.serial;
      return;
    case 'record': {
      const pkg = (data.packages[change.package] ??= {
        file: change.file,
        appliedAt: change.appliedAt,
        commands: {},
      });
      pkg.file = change.file;
      pkg.appliedAt = change.appliedAt;
      pkg.commands[change.id] = change.record;
      return;
    }
    case 'forget': {
      const pkg = data.packages[change.package];
      if (pkg === undefined) return;
      Reflect.deleteProperty(pkg.commands, change.id);
      if (Object.keys(pkg.commands).length === 0)
        Reflect.deleteProperty(data.packages, change.package);
      return;
    }
  }
}

/** The first line of a journal: which state it continues, and after which change. */
interface JournalHeader {
  format: 'spin-state-journal';
  lineage: string;
  /** The `journalSeq` of the state file this journal was begun after. */
  after: number;
}

/** Where the journal of the state file at `statePath` lives. */
export const journalPath = (statePath: string): string => `${statePath}.journal`;

/**
 * Reads the journal beside a state file and applies to `data` the changes it holds that the
 * file does not: those numbered after the file's `journalSeq`, in order, up to the first line
 * that is not whole (a write cut short). A journal of another lineage, or one begun after a
 * later state than `data` (the file was put back from its backup, or a reader without the lock
 * caught a newer journal beside the older file) is not applied. Returns whether a journal file
 * exists, and how many changes were applied.
 */
export async function replayJournal(
  statePath: string,
  data: StateData,
): Promise<{ exists: boolean; applied: number }> {
  let text: string;
  try {
    text = await readFile(journalPath(statePath), 'utf8');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return { exists: false, applied: 0 };
    throw error;
  }
  const lines = text.split('\n');
  const header = parseLine(lines[0] ?? '') as Partial<JournalHeader> | undefined;
  const base = data.journalSeq ?? 0;
  if (
    header?.format !== 'spin-state-journal' ||
    header.lineage !== data.lineage ||
    typeof header.after !== 'number' ||
    header.after > base
  ) {
    return { exists: true, applied: 0 };
  }
  let expected = header.after + 1;
  let applied = 0;
  for (const line of lines.slice(1)) {
    const entry = parseLine(line) as (StateChange & { seq?: unknown }) | undefined;
    if (entry?.seq !== expected) break;
    expected += 1;
    if (entry.seq <= base) continue;
    const { seq: _seq, ...change } = entry;
    applyChange(data, change);
    data.journalSeq = entry.seq;
    applied += 1;
  }
  return { exists: true, applied };
}

function parseLine(line: string): unknown {
  if (line === '') return undefined;
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

/**
 * The journal of an open state file, appended to by the one process that holds the state lock.
 * Changes are numbered; `append` queues one, and `flush` writes every queued one with a single
 * write and a single fdatasync, so a result costs a line, not a rewrite of the whole state.
 * A state file written whole records the number of the last change it holds (`journalSeq`), after
 * which the journal is removed (`discard`) and begun anew by the next change.
 */
export class StateJournal {
  readonly path: string;
  #handle: FileHandle | undefined;
  #pending: { seq: number; line: string }[] = [];
  /** Bytes in the journal file, for deciding when to write the state whole instead. */
  bytes = 0;

  constructor(readonly statePath: string) {
    this.path = journalPath(statePath);
  }

  append(seq: number, change: StateChange): void {
    this.#pending.push({ seq, line: JSON.stringify({ seq, ...change }) });
  }

  /**
   * Writes the queued changes and makes them durable. The first flush after `discard` begins the
   * file with its header (`lineage`, `after`) and makes its name durable too.
   */
  async flush(lineage: string, after: number): Promise<void> {
    if (this.#pending.length === 0) return;
    const lines = this.#pending;
    this.#pending = [];
    let text = `${lines.map((p) => p.line).join('\n')}\n`;
    const begins = this.#handle === undefined;
    if (begins) {
      const header: JournalHeader = { format: 'spin-state-journal', lineage, after };
      text = `${JSON.stringify(header)}\n${text}`;
      this.#handle = await open(this.path, 'w', 0o600);
      this.bytes = 0;
    }
    const handle = this.#handle as FileHandle;
    // The write only fills the page cache, so it is made in place; the sync goes to the pool.
    writeAllSync(handle.fd, Buffer.from(text));
    this.bytes += text.length;
    await handle.datasync();
    if (begins) await syncDirectory(dirname(this.path));
  }

  /**
   * Removes the file and the queued changes up to `seq`: the state file was written whole with
   * them. Changes made since stay queued for the next journal.
   */
  async discard(seq: number): Promise<void> {
    this.#pending = this.#pending.filter((p) => p.seq > seq);
    await this.#handle?.close();
    this.#handle = undefined;
    this.bytes = 0;
    await rm(this.path, { force: true });
  }

  async close(): Promise<void> {
    await this.#handle?.close();
    this.#handle = undefined;
  }
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes all of `bytes` at the descriptor's position (a write may take only part). */
function writeAllSync(fd: number, bytes: Buffer): void {
  let offset = 0;
  while (offset < bytes.length) offset += writeSync(fd, bytes, offset);
}
