import { watch as watchFs, type FSWatcher as FsWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import type { WatchScope } from './watch-scope.js';

/**
 * Where a directory watch stands:
 *
 *   idle ──start──▶ watching ──directory removed──▶ missing ──directory back──▶ watching
 *     any ──close──▶ closed
 *
 * chokidar loses a directory that is removed (its inotify watches die with it), so presence
 * is followed on the parent (one non-recursive watch of its entries) and chokidar is armed
 * afresh each time the directory comes back.
 */
export type DirectoryWatchState = 'idle' | 'watching' | 'missing' | 'closed';

/** What a directory watch reports. */
export interface DirectoryWatchOptions {
  scope: WatchScope;
  /** A package file (in scope) was added, changed or removed. */
  onChange: (file: string) => void;
  /** The watch is armed (`present`) — ready, every file below already listed — or the directory is gone. */
  onPresence: (present: boolean) => void;
  onError: (error: Error) => void;
}

/** Follows the package files below a directory, surviving the directory's removal. */
export class DirectoryWatcher {
  #state: DirectoryWatchState = 'idle';
  #files: FSWatcher | undefined;
  #parent: FsWatcher | undefined;
  #checking: Promise<void> = Promise.resolve();
  readonly #options: DirectoryWatchOptions;

  constructor(options: DirectoryWatchOptions) {
    this.#options = options;
  }

  get state(): DirectoryWatchState {
    return this.#state;
  }

  /** Arms the watch (or notes the directory missing); resolves once chokidar is ready. */
  async start(): Promise<void> {
    const dir = this.#options.scope.dir;
    try {
      this.#parent = watchFs(dirname(dir), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(dir)) void this.check();
      });
      this.#parent.on('error', () => undefined);
    } catch {
      // No parent to watch (e.g. `/`): the periodic check is the only way back.
    }
    await this.check();
  }

  /**
   * Compares the directory's presence with the watch and re-arms or disarms. Called on parent
   * events and by the periodic resync; checks run one at a time.
   */
  check(): Promise<void> {
    this.#checking = this.#checking.then(() => this.#check()).catch(this.#options.onError);
    return this.#checking;
  }

  async close(): Promise<void> {
    this.#state = 'closed';
    this.#parent?.close();
    await this.#disarm();
    await this.#checking;
  }

  async #check(): Promise<void> {
    if (this.#state === 'closed') return;
    const present = await isDirectory(this.#options.scope.dir);
    if (present && this.#state !== 'watching') {
      await this.#arm();
      if (this.#isClosed()) return;
      this.#state = 'watching';
      this.#options.onPresence(true);
    } else if (!present && this.#state !== 'missing') {
      await this.#disarm();
      if (this.#isClosed()) return;
      this.#state = 'missing';
      this.#options.onPresence(false);
    }
  }

  /** A method, not a comparison, so the compiler does not narrow across the awaits above. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  async #arm(): Promise<void> {
    await this.#disarm();
    const { scope, onChange, onError } = this.#options;
    const files = chokidarWatch(scope.dir, {
      ignoreInitial: true,
      persistent: true,
      ignored: (path, stats) => scope.ignored(path, stats),
    });
    this.#files = files;
    const changed = (path: string): void => {
      if (scope.includes(path)) onChange(path);
    };
    files.on('add', changed).on('change', changed).on('unlink', changed);
    files.on('unlinkDir', (path) => {
      if (path === scope.dir) void this.check();
    });
    files.on('error', (error) => {
      onError(error instanceof Error ? error : new Error(String(error)));
    });
    await new Promise<void>((resolve) => files.once('ready', resolve));
  }

  async #disarm(): Promise<void> {
    const files = this.#files;
    this.#files = undefined;
    await files?.close();
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
