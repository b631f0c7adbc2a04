import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

/**
 * Resolves with the text of `path` once it exists, woken by its directory changing (never a
 * fixed sleep). Meant for files written whole (by rename), such as fake-program's --ready-file.
 * Rejects if `gaveUp` settles first (say, the process that should write the file ended).
 */
export function fileAppears(path: string, gaveUp?: Promise<unknown>): Promise<string> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error, text?: string): void => {
      if (settled) return;
      settled = true;
      watcher.close();
      if (error === undefined) resolve(text ?? '');
      else reject(error);
    };
    const look = (): void => {
      readFile(path, 'utf8').then(
        (text) => {
          finish(undefined, text);
        },
        (error: unknown) => {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') finish(error as Error);
        },
      );
    };
    const watcher = watch(dirname(path), (_event, name) => {
      if (name === null || name === basename(path)) look();
    });
    look();
    void gaveUp?.then(
      () => {
        finish(new Error(`${path} never appeared: what should write it ended first`));
      },
      (error: unknown) => {
        finish(error as Error);
      },
    );
  });
}
