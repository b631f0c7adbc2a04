import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SpinError } from './errors.js';

/**
 * The directory where spin keeps everything of one installation: the state file, the daemon's
 * socket and store, images and VMs. `$SPIN_HOME`, else `~/.config/spin` (as spin-broker had it).
 * It is created when first needed; a path that exists but is not a directory (or lies under a
 * file) is refused here with exit 2, rather than as whatever a later open or mkdir says.
 */
export function spinHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['SPIN_HOME'];
  const home =
    fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.config', 'spin');
  let isDirectory: boolean | undefined;
  try {
    isDirectory = statSync(home, { throwIfNoEntry: false })?.isDirectory();
  } catch {
    isDirectory = false; // a component is a file (ENOTDIR), or cannot be looked at
  }
  if (isDirectory === false) {
    throw new SpinError('invalid_input', `spin's home ${home} is not a directory`, {
      details: { home },
      suggestions: [
        fromEnv !== undefined && fromEnv !== ''
          ? 'Point SPIN_HOME at a directory (spin creates one that does not exist yet).'
          : `Move what is at ${home} aside, or set SPIN_HOME to a directory.`,
      ],
    });
  }
  return home;
}
