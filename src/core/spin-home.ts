import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The directory where spin keeps everything of one installation: the state file, the daemon's
 * socket and store, images and VMs. `$SPIN_HOME`, else `~/.config/spin` (as spin-broker had it).
 */
export function spinHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['SPIN_HOME'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.config', 'spin');
}
