import { watch } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Resolves with what `accept` makes of the text of `path` once it accepts it (returns anything
 * but undefined), reading the file again each time its directory changes (a file appended to,
 * or replaced by rename) — never on a timer. Rejects after `ms` with the last text seen.
 */
export function fileUntil<T>(
  path: string,
  accept: (text: string) => T | undefined,
  ms = 60_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let last = '';
    let settled = false;
    const finish = (error: Error | undefined, value?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watcher.close();
      if (error === undefined) resolve(value as T);
      else reject(error);
    };
    const look = (): void => {
      readFile(path, 'utf8').then(
        (text) => {
          last = text;
          const value = accept(text);
          if (value !== undefined) finish(undefined, value);
        },
        () => undefined, // not there yet
      );
    };
    const timer = setTimeout(() => {
      finish(new Error(`${path} did not reach what was waited for in ${String(ms)} ms:\n${last}`));
    }, ms);
    const watcher = watch(dirname(path), look);
    look();
  });
}

/**
 * Resolves with the names in `dir` once `accept` holds for them, listing it again each time it
 * changes — never on a timer. Rejects after `ms` with the last names seen.
 */
export function entriesUntil(
  dir: string,
  accept: (names: string[]) => boolean,
  ms = 20_000,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let last: string[] = [];
    let settled = false;
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watcher.close();
      if (error === undefined) resolve(last);
      else reject(error);
    };
    const look = (): void => {
      readdir(dir).then(
        (names) => {
          last = names;
          if (accept(names)) finish(undefined);
        },
        (error: unknown) => {
          finish(error as Error);
        },
      );
    };
    const timer = setTimeout(() => {
      finish(
        new Error(
          `${dir} did not hold what was waited for in ${String(ms)} ms: ${last.join(', ')}`,
        ),
      );
    }, ms);
    const watcher = watch(dir, look);
    look();
  });
}

/** The JSON lines of an NDJSON text (the audit log), parsed. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
