import { rename, stat } from 'node:fs/promises';
import { errnoOf } from '../fs-util.js';

/**
 * How many consoles of earlier boots a VM keeps beside `console.log`: `console.log.1` (the boot
 * before) up to `console.log.5`. A VM that crashes in a loop keeps six boots' worth at most.
 */
export const keptConsoles = 5;

/** The name of the rotated console `n` (1 the newest) of `console`, or the console itself for 0. */
export function rotatedConsole(console: string, n: number): string {
  return n === 0 ? console : `${console}.${String(n)}`;
}

/**
 * Moves the console of the last boot aside before a VM starts again: `console.log` becomes
 * `console.log.1`, `.1` becomes `.2`, …, and what was `.keep` is replaced (so dropped). An empty
 * or missing console is left as it is: a start that never got to write one does not push a real
 * boot out. Renames only, in the VM's own directory: a reader that holds a file open (a follower
 * of the log) keeps reading the boot it was reading.
 */
export async function rotateConsole(console: string, keep: number = keptConsoles): Promise<void> {
  const size = await stat(console).then(
    (s) => s.size,
    (error: unknown) => {
      if (errnoOf(error) === 'ENOENT') return 0;
      throw error;
    },
  );
  if (size === 0) return;
  for (let n = keep - 1; n >= 0; n--) {
    await rename(rotatedConsole(console, n), rotatedConsole(console, n + 1)).catch(
      (error: unknown) => {
        if (errnoOf(error) !== 'ENOENT') throw error;
      },
    );
  }
}
