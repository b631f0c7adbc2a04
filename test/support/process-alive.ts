import { readFileSync } from 'node:fs';

/**
 * Whether `pid` is a live process, read from /proc as a person would check with `ps`: a zombie
 * (ended, and not reaped: nothing reaps orphans on these machines) is not. Independent of spin's
 * own checks, so tests of those checks do not grade them with themselves.
 */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
