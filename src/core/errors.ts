import { ExitCode } from './exit-codes.js';

/**
 * Stable codes of the failures that cross a boundary (CLI, daemon API, agent acks). Callers
 * branch on the code, never on message text, and a code never changes meaning.
 */
export type ErrorCode =
  | 'invalid_input'
  | 'invalid_package'
  | 'file_too_large'
  | 'file_not_found'
  | 'usage'
  | 'not_found'
  | 'lock_held'
  | 'state_corrupt'
  | 'state_conflict'
  | 'daemon_running'
  | 'unreachable'
  | 'timeout'
  | 'cancelled'
  | 'stale_attempt'
  | 'wrong_node'
  | 'node_unavailable'
  | 'store_failed'
  | 'path_outside_root'
  | 'already_exists'
  | 'not_empty'
  | 'no_space'
  | 'shell_disabled'
  | 'preflight_failed'
  | 'insufficient_resources'
  | 'action_failed'
  | 'internal';

const exitCodeOf: Record<ErrorCode, ExitCode> = {
  invalid_input: ExitCode.invalidInput,
  invalid_package: ExitCode.invalidInput,
  file_too_large: ExitCode.invalidInput,
  file_not_found: ExitCode.invalidInput,
  usage: ExitCode.invalidInput,
  not_found: ExitCode.invalidInput,
  lock_held: ExitCode.conflict,
  state_corrupt: ExitCode.conflict,
  state_conflict: ExitCode.conflict,
  daemon_running: ExitCode.conflict,
  unreachable: ExitCode.unreachable,
  timeout: ExitCode.commandFailed,
  cancelled: ExitCode.commandFailed,
  stale_attempt: ExitCode.conflict,
  wrong_node: ExitCode.conflict,
  node_unavailable: ExitCode.commandFailed,
  store_failed: ExitCode.unreachable,
  path_outside_root: ExitCode.invalidInput,
  already_exists: ExitCode.commandFailed,
  not_empty: ExitCode.commandFailed,
  no_space: ExitCode.commandFailed,
  shell_disabled: ExitCode.invalidInput,
  preflight_failed: ExitCode.invalidInput,
  insufficient_resources: ExitCode.commandFailed,
  action_failed: ExitCode.commandFailed,
  internal: ExitCode.commandFailed,
};

/** The form in which an error travels between processes: rebuilt by `code`, never by text. */
export interface WireError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export interface SpinErrorOptions {
  details?: Record<string, unknown>;
  suggestions?: string[];
  cause?: unknown;
  /** Whether doing the same thing again may succeed (a timeout) or never will (bad params). */
  retryable?: boolean;
}

/**
 * The one thrown error type of spin. Every failure at a boundary is a SpinError with a stable
 * `code`; the exit code follows from the code, and oclif's handler renders `message` and
 * `suggestions`. Expected problems found while loading are values (diagnostics), not throws.
 */
export class SpinError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  readonly suggestions: string[];
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: SpinErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SpinError';
    this.code = code;
    this.details = options.details ?? {};
    this.suggestions = options.suggestions ?? [];
    this.retryable = options.retryable ?? false;
  }

  /** The process exit code this error ends a command with. */
  get exitCode(): ExitCode {
    return exitCodeOf[this.code];
  }

  toWire(): WireError {
    return Object.keys(this.details).length > 0
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message };
  }

  static fromWire(wire: WireError): SpinError {
    const code = wire.code in exitCodeOf ? wire.code : 'internal';
    return new SpinError(code, wire.message, wire.details ? { details: wire.details } : {});
  }
}

/** An invariant was broken: a bug in spin, never the user's input. */
export function internalError(message: string): SpinError {
  return new SpinError('internal', `Internal error: ${message}`);
}

/** Marks a branch the type checker proves impossible; ends every exhaustive `switch`. */
export function unreachable(value: never): never {
  throw internalError(`unexpected value ${JSON.stringify(value)}`);
}

/** The message of anything thrown, for rendering. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
