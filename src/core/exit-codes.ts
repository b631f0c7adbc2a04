/**
 * The process exit codes every spin command uses. They are part of the public interface: CI
 * scripts branch on them, so a value never changes meaning.
 */
export const ExitCode = {
  /** Everything asked for was done (or there was nothing to do). */
  ok: 0,
  /** A command failed while it was carried out. */
  commandFailed: 1,
  /** The input or the command line was invalid; nothing ran. */
  invalidInput: 2,
  /** A lock is held by another process, or the state file is corrupt or foreign. */
  conflict: 3,
  /** The daemon or broker could not be reached. */
  unreachable: 4,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
