import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { confinePath, confineRoot } from '../agents/confined-path.js';
import { errnoOf } from '../agents/fs-util.js';

/**
 * The output of every attempt of every command, kept under `$SPIN_HOME/logs/<package>/<command>/`
 * as `<n>.log`, numbered from 1 for each command across runs. One line per entry:
 *
 * ```
 * 2026-11-30T04:22:08.969Z note started shell.run (attempt 2)
 * 2026-11-30T04:22:08.972Z out to-stdout
 * 2026-11-30T04:22:08.972Z err oops
 * 2026-11-30T04:22:08.975Z note failed in 8ms: 'sh' exited with code 3. [action_failed]
 * ```
 *
 * `out`/`err` are a program's stdout and stderr, `msg` an agent's progress line, `note` what spin
 * says of the attempt (its start and end), `cut` the number of earlier lines dropped.
 */
export type LogTag = 'out' | 'err' | 'msg' | 'note' | 'cut';

/** One entry of an attempt's log. `at` is undefined for a line that is not in the format. */
export interface LogLine {
  at?: string;
  tag: LogTag;
  text: string;
}

/**
 * How much is kept: an attempt's file is renamed to `<n>.prev.log` when it would pass
 * `segmentBytes`, and a fresh `<n>.log` begins (the `prev` before it is dropped), so an attempt
 * keeps between one and two segments of its latest output; the last `keep` attempts of a command
 * are kept.
 */
export interface AttemptLogLimits {
  segmentBytes: number;
  keep: number;
}

export const defaultLogLimits: AttemptLogLimits = { segmentBytes: 512 * 1024, keep: 10 };

/** Longer lines (a program that prints no newline) are cut into lines of this many characters. */
const maxLineChars = 16 * 1024;

const plainSegment = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * The directory name of a package or command: the name itself when it is a plain name (every
 * package name and command id of a file is), else `~` and a hash, so that no name (one given to
 * `spin message new`) can name a path.
 */
export function logSegment(name: string): string {
  return plainSegment.test(name)
    ? name
    : `~${createHash('sha256').update(name).digest('hex').slice(0, 32)}`;
}

/** `$SPIN_HOME/logs`, the root of every attempt log. */
export function logsRoot(home: string): string {
  return join(home, 'logs');
}

/** The kept attempts of a command's log directory, oldest first. */
export function keptAttempts(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return [];
    throw error;
  }
  const numbers = new Set<number>();
  for (const name of names) {
    const match = /^([1-9][0-9]{0,9})(?:\.prev)?\.log$/.exec(name);
    if (match?.[1] !== undefined) numbers.add(Number(match[1]));
  }
  return [...numbers].sort((a, b) => a - b);
}

/** The files of attempt `n` in `dir`, in the order they were written. */
export function attemptFiles(dir: string, n: number): { previous: string; current: string } {
  return { previous: join(dir, `${String(n)}.prev.log`), current: join(dir, `${String(n)}.log`) };
}

/**
 * The entries of log text. A `cut` line is kept only where it comes first (it speaks of what
 * came before the file it opens; after a previous segment it says nothing new).
 */
export function parseLogLines(text: string, first = true): LogLine[] {
  const lines: LogLine[] = [];
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    const match = /^(\d{4}-\d\d-\d\dT[0-9:.]+Z) (out|err|msg|note|cut) (.*)$/s.exec(raw);
    const line: LogLine =
      match === null
        ? { tag: 'out', text: raw }
        : { at: match[1] ?? '', tag: match[2] as LogTag, text: match[3] ?? '' };
    if (line.tag === 'cut' && !(first && lines.length === 0)) continue;
    lines.push(line);
  }
  return lines;
}

const openFlags =
  constants.O_WRONLY |
  constants.O_CREAT |
  constants.O_EXCL |
  constants.O_APPEND |
  constants.O_NOFOLLOW;

/** The attempt a log is opened for: its command, and what it runs (`shell.run`). */
export interface AttemptOfLog {
  packageName: string;
  commandId: string;
  action: string;
}

/**
 * The log of one attempt, written as the attempt runs (synchronous appends: microseconds each).
 * An attempt that says nothing and succeeds leaves no file, unless the command has kept attempts
 * (whose last would otherwise pass for this one's): a thousand quiet commands cost no thousand
 * files. Keeping it is never required for the command: a log that cannot be written is dropped,
 * and the attempt goes on.
 */
export class AttemptLog {
  readonly #root: string | undefined;
  readonly #attempt: AttemptOfLog;
  readonly #limits: AttemptLogLimits;
  readonly #now: () => number;
  readonly #startedAt: number;
  /** Whether the command has kept attempts: then even a quiet one is kept. */
  readonly #earlier: boolean;
  readonly #decoders = {
    stdout: { decoder: new StringDecoder('utf8'), partial: '' },
    stderr: { decoder: new StringDecoder('utf8'), partial: '' },
  };
  /** What was said before the file was made: written to it when it is. */
  #pending: { text: string; lines: number }[] = [];
  #state: 'pending' | 'open' | 'dropped' = 'pending';
  #dir = '';
  #number = 0;
  #fd: number | undefined;
  #size = 0;
  #lines = 0;
  #linesBefore = 0;
  /** Whether a program's output came through `output` (then the end note does not repeat it). */
  streamed = false;

  private constructor(
    root: string | undefined,
    attempt: AttemptOfLog,
    options: { limits: AttemptLogLimits; now: () => number; earlier: boolean },
  ) {
    this.#root = root;
    this.#attempt = attempt;
    this.#limits = options.limits;
    this.#now = options.now;
    this.#startedAt = options.now();
    this.#earlier = options.earlier;
    if (root === undefined) this.#state = 'dropped';
  }

  /**
   * Begins the log of an attempt of `attempt.commandId` of `attempt.packageName` under `home`,
   * confined to the home (no link is followed). Never throws: a log that cannot be kept is one
   * that keeps nothing.
   */
  static async open(
    home: string,
    attempt: AttemptOfLog,
    options: { limits?: AttemptLogLimits; now?: () => number } = {},
  ): Promise<AttemptLog> {
    const settings = { limits: options.limits ?? defaultLogLimits, now: options.now ?? Date.now };
    try {
      const root = await confineRoot(logsRoot(home));
      const relative = `${logSegment(attempt.packageName)}/${logSegment(attempt.commandId)}`;
      const dir = await confinePath(root, relative, 'relative');
      if (dir.kind !== 'missing' && dir.kind !== 'directory') throw new Error('not a directory');
      const earlier = dir.kind === 'directory' && keptAttempts(dir.path).length > 0;
      return new AttemptLog(root, attempt, { ...settings, earlier });
    } catch {
      return new AttemptLog(undefined, attempt, { ...settings, earlier: false });
    }
  }

  /** The attempt's number among the command's attempts; 0 while (or when) nothing is kept. */
  get number(): number {
    return this.#number;
  }

  /** Writes what spin says of the attempt (its end). */
  note(text: string): void {
    this.#write(this.#format('note', text), false);
  }

  /** Writes an agent's progress line. */
  message(text: string): void {
    this.#write(this.#format('msg', text), true);
  }

  /** Writes a chunk of a program's output; a line is written once its newline arrives. */
  output(chunk: Buffer, stream: 'stdout' | 'stderr'): void {
    this.streamed = true;
    const state = this.#decoders[stream];
    const parts = (state.partial + state.decoder.write(chunk)).split('\n');
    state.partial = parts.pop() ?? '';
    while (state.partial.length > maxLineChars) {
      parts.push(state.partial.slice(0, maxLineChars));
      state.partial = state.partial.slice(maxLineChars);
    }
    if (parts.length > 0) {
      this.#write(this.#format(stream === 'stdout' ? 'out' : 'err', ...parts), true);
    }
  }

  /**
   * Writes what is left of partial lines and the end note, and closes the file. `keep`: the
   * attempt is kept even if it said nothing (it failed).
   */
  close(endNote: string, keep: boolean): void {
    for (const [stream, state] of Object.entries(this.#decoders)) {
      const rest = state.partial + state.decoder.end();
      state.partial = '';
      if (rest !== '') this.#write(this.#format(stream === 'stdout' ? 'out' : 'err', rest), true);
    }
    this.#write(this.#format('note', endNote), keep || this.#earlier);
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.#pending = [];
  }

  #format(tag: LogTag, ...texts: string[]): { text: string; lines: number } {
    const at = new Date(this.#now()).toISOString();
    return formatLines(at, tag, texts);
  }

  /** Writes an entry, making the file first when `keep` (else it waits for a reason to). */
  #write(entry: { text: string; lines: number }, keep: boolean): void {
    if (this.#state === 'dropped') return;
    if (this.#state === 'pending') {
      this.#pending.push(entry);
      if (!keep) return;
      this.#materialize();
      return;
    }
    this.#append(entry);
  }

  /** Makes the attempt's file (its number the next of the command's) and writes what waited. */
  #materialize(): void {
    try {
      const root = this.#root ?? '';
      const pkg = join(root, logSegment(this.#attempt.packageName));
      this.#dir = join(pkg, logSegment(this.#attempt.commandId));
      for (const dir of [pkg, this.#dir]) plainDirectory(dir);
      const kept = keptAttempts(this.#dir);
      let number = (kept.at(-1) ?? 0) + 1;
      while (this.#fd === undefined) {
        try {
          this.#fd = openSync(attemptFiles(this.#dir, number).current, openFlags, 0o600);
        } catch (error) {
          if (errnoOf(error) !== 'EEXIST') throw error;
          number++; // another process began an attempt of the same command meanwhile
        }
      }
      this.#number = number;
      for (const old of kept.filter((n) => n <= number - this.#limits.keep)) {
        const files = attemptFiles(this.#dir, old);
        rmSync(files.previous, { force: true });
        rmSync(files.current, { force: true });
      }
      this.#state = 'open';
      const started = new Date(this.#startedAt).toISOString();
      this.#append(
        formatLines(started, 'note', [
          `started ${this.#attempt.action} (attempt ${String(number)})`,
        ]),
      );
      for (const entry of this.#pending) this.#append(entry);
      this.#pending = [];
    } catch {
      this.#drop();
    }
  }

  #append(entry: { text: string; lines: number }): void {
    if (this.#fd === undefined) return;
    try {
      const bytes = Buffer.byteLength(entry.text);
      if (this.#size > 0 && this.#size + bytes > this.#limits.segmentBytes) this.#rotate();
      writeSync(this.#fd, entry.text);
      this.#size += bytes;
      this.#lines += entry.lines;
    } catch {
      this.#drop();
    }
  }

  /** Moves the current segment to `prev` (the one before is dropped) and begins a new one. */
  #rotate(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
    const files = attemptFiles(this.#dir, this.#number);
    renameSync(files.current, files.previous);
    this.#linesBefore += this.#lines;
    this.#lines = 0;
    this.#fd = openSync(files.current, openFlags, 0o600);
    const cut = this.#format('cut', String(this.#linesBefore));
    writeSync(this.#fd, cut.text);
    this.#size = Buffer.byteLength(cut.text);
  }

  #drop(): void {
    this.#state = 'dropped';
    this.#pending = [];
    if (this.#fd !== undefined) {
      try {
        closeSync(this.#fd);
      } catch {
        // already unusable
      }
    }
    this.#fd = undefined;
  }
}

/** Lines of log text: each of `texts` (split at its newlines) stamped with `at` and `tag`. */
function formatLines(at: string, tag: LogTag, texts: string[]): { text: string; lines: number } {
  const lines = texts.flatMap((t) => t.split('\n'));
  return { text: lines.map((l) => `${at} ${tag} ${l}\n`).join(''), lines: lines.length };
}

/**
 * Makes `dir` (its parent exists) unless it is there, and checks that it is a directory and
 * no link: what confinePath checks, synchronously, for the two directories below the logs root.
 */
function plainDirectory(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if (errnoOf(error) !== 'EEXIST') throw error;
  }
  const stats = lstatSync(dir);
  if (stats.isSymbolicLink() || !stats.isDirectory()) throw new Error(`${dir} is not a directory`);
}
