import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * A process, told apart from any later one that gets its pid: the pid, the host, and the
 * process's start time (field 22 of `/proc/<pid>/stat`, in clock ticks since boot).
 */
export interface ProcessIdentity {
  pid: number;
  host: string;
  startTime: number;
}

/**
 * The start time of `pid`, or undefined when no such process runs (or /proc cannot tell). A
 * zombie does not run: a process killed while nothing reaps it (its parent died too, and PID 1
 * does not reap, as in some containers) stays one, and must count as gone.
 */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a process with this pid runs now, on this host and in this pid namespace: it exists
 * and is not a zombie. A recycled pid counts as running: callers that must tell a process from
 * a later one with its pid keep its `ProcessIdentity` instead.
 */
export function isRunning(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 0 && processStartTime(pid) !== undefined;
}

/** This process. */
export function currentProcess(): ProcessIdentity {
  return { pid: process.pid, host: hostname(), startTime: processStartTime(process.pid) ?? 0 };
}

/**
 * Whether `identity` is gone for sure: on this host, its pid runs no process, or one started at
 * another time. A process of another host cannot be checked from here, so it is never gone.
 */
export function isGone(identity: ProcessIdentity): boolean {
  if (identity.host !== hostname()) return false;
  const start = processStartTime(identity.pid);
  return start === undefined || start !== identity.startTime;
}
