import { closeSync, fstatSync, openSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { constants } from 'node:fs';

/**
 * A piece of the followed file. `fresh`: a file begins here, so whatever a reader kept of a
 * partial line belongs to the file before. `replaced`: it began in place of a file that was
 * followed (rotated away, a newer one named by `current`, or the same file truncated).
 */
export interface FollowedChunk {
  path: string;
  data: Buffer;
  fresh: boolean;
  replaced: boolean;
}

/** What to follow: the file `current()` names now, in the directory `dir`. */
export interface FollowOptions {
  dir: string;
  /** The path to follow now; undefined while there is none (not yet created). */
  current: () => string | undefined;
  signal: AbortSignal;
  /**
   * How often to look without being woken: the directory is watched (inotify), so this only
   * covers a directory that does not exist yet, or was replaced, or a file system that does not
   * report changes. One second unless set.
   */
  pollMs?: number;
}

/** Bytes read and handed on at most at once, so a large file is never held whole. */
const readLimit = 1024 * 1024;

/**
 * How long after a change the file is read: a guest's console is written a few bytes at a time,
 * and reading after each write would cost a wake-up and a chunk per write.
 */
const gatherMs = 20;

interface OpenFile {
  fd: number;
  path: string;
  dev: number;
  ino: number;
  position: number;
}

/**
 * Follows a file as `tail -F` does, until `signal` fires: yields what it holds first (one chunk,
 * empty when there is no file yet; larger files in several), then what is appended as it is
 * appended. When the file is renamed away (rotated: `console.log` → `console.log.1`) or
 * `current()` names another file, the old one is read to its end before the new one is followed
 * from its start; a file truncated in place is read again from its start. Woken by changes in
 * `dir`, not by polling.
 */
export async function* followFile(
  options: FollowOptions,
): AsyncGenerator<FollowedChunk, void, undefined> {
  const { dir, signal } = options;
  const wake = new Wakeup();
  const onAbort = (): void => {
    wake.notify();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) wake.notify();
  const timer = setInterval(onAbort, options.pollMs ?? 1000);
  let watched: { watcher: FSWatcher; ino: number } | undefined;
  let file: OpenFile | undefined;
  try {
    watched = watchDir(dir, wake);
    file = openCurrent(options.current());
    if (file === undefined) {
      yield { path: options.current() ?? dir, data: Buffer.alloc(0), fresh: true, replaced: false };
    } else yield* readAll(file, 'first');
    for (;;) {
      await wake.next();
      if (!signal.aborted) await delay(gatherMs);
      if (signal.aborted) break;
      wake.clear(); // what changed meanwhile is read now
      const dirIno = inodeOf(dir);
      if (watched?.ino !== dirIno) {
        watched?.watcher.close();
        watched = watchDir(dir, wake);
      }
      if (file !== undefined) yield* readAll(file, 'more');
      const path = options.current();
      const seen = path === undefined ? undefined : statOrUndefined(path);
      if (path === undefined || seen === undefined) continue;
      if (file !== undefined && seen.ino === file.ino && seen.dev === file.dev) {
        if (seen.size < file.position) {
          file.position = 0; // truncated in place: what it holds now is new
          yield* readAll(file, 'replaced');
        }
        continue;
      }
      const next = openCurrent(path);
      if (next === undefined) continue;
      const replaced = file !== undefined;
      if (file !== undefined) {
        yield* readAll(file, 'more'); // what was written to the old file until it was replaced
        closeSync(file.fd);
      }
      file = next;
      yield* readAll(file, replaced ? 'replaced' : 'first');
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    clearInterval(timer);
    watched?.watcher.close();
    if (file !== undefined) closeSync(file.fd);
  }
}

/**
 * Reads `file` from its position to its end, in chunks of at most `readLimit` bytes; `how` says
 * whether the file begins here (as the first one followed, or in place of another), which its
 * first chunk carries even when empty.
 */
function* readAll(file: OpenFile, how: 'first' | 'replaced' | 'more'): Generator<FollowedChunk> {
  let fresh = how !== 'more';
  for (;;) {
    const size = Math.min(readLimit, Math.max(0, fstatSync(file.fd).size - file.position));
    const buffer = Buffer.alloc(size);
    let length = 0;
    while (length < size) {
      const n = readSync(file.fd, buffer, length, size - length, file.position);
      if (n === 0) break;
      length += n;
      file.position += n;
    }
    if (length > 0 || fresh) {
      const data = buffer.subarray(0, length);
      yield { path: file.path, data, fresh, replaced: fresh && how === 'replaced' };
    }
    fresh = false;
    if (length < readLimit) return;
  }
}

function openCurrent(path: string | undefined): OpenFile | undefined {
  if (path === undefined) return undefined;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined; // not there (yet), or not a file to read
  }
  const stats = fstatSync(fd);
  if (!stats.isFile()) {
    closeSync(fd);
    return undefined;
  }
  return { fd, path, dev: stats.dev, ino: stats.ino, position: 0 };
}

function statOrUndefined(path: string): { dev: number; ino: number; size: number } | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function inodeOf(path: string): number | undefined {
  return statOrUndefined(path)?.ino;
}

/** Watches `dir` for any change, or returns undefined while it cannot (it does not exist yet). */
function watchDir(dir: string, wake: Wakeup): { watcher: FSWatcher; ino: number } | undefined {
  const ino = inodeOf(dir);
  if (ino === undefined) return undefined;
  try {
    const watcher = watch(dir, () => {
      wake.notify();
    });
    watcher.on('error', () => {
      wake.notify();
    });
    return { watcher, ino };
  } catch {
    return undefined;
  }
}

/** A wake-up that is never lost: one given while nobody waits is kept for the next wait. */
class Wakeup {
  #pending = false;
  #resolve: (() => void) | undefined;

  /** Forgets a wake-up given while nobody waited. */
  clear(): void {
    this.#pending = false;
  }

  notify(): void {
    const resolve = this.#resolve;
    this.#resolve = undefined;
    if (resolve === undefined) this.#pending = true;
    else resolve();
  }

  next(): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }
}
