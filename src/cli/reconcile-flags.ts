import { join } from 'node:path';
import * as Flags from '@oclif/core/flags';
import { durationToMs } from '../core/duration.js';
import { SpinError } from '../core/errors.js';
import { spinHome } from '../core/spin-home.js';
import type { OutputMode } from './reconcile-lines.js';

/** Flags of the commands that read and write the state file. */
export const stateFlags = {
  state: Flags.string({ description: 'state file [default: $SPIN_HOME/state.json]' }),
  'lock-timeout': Flags.string({
    description:
      'wait this long for another apply to release the state (e.g. 30s, 5m) instead of failing at once',
    default: '0s',
  }),
};

/** Flags of the commands that show progress. */
export const outputFlags = {
  output: Flags.string({
    char: 'o',
    description:
      'progress: live tasks in a terminal, timestamped lines, or one JSON event per line',
    options: ['auto', 'tty', 'plain', 'json'],
    default: 'auto',
  }),
};

/** Where state and agents live for this run. */
export function resolveHome(flags: { state?: string | undefined }): {
  home: string;
  statePath: string;
} {
  const home = spinHome();
  return { home, statePath: flags.state ?? join(home, 'state.json') };
}

/** The lock timeout flag in milliseconds; a malformed one is a usage error. */
export function lockTimeoutMs(value: string): number {
  const ms = durationToMs(/^\d+$/.test(value) ? Number(value) : value);
  if (ms === undefined)
    throw new SpinError('usage', `--lock-timeout: '${value}' is not a duration like 30s or 5m`);
  return ms;
}

/** The output mode: `auto` is live tasks on a terminal (and not under CI), plain lines otherwise. */
export function outputMode(value: string): OutputMode {
  if (value === 'tty' || value === 'plain' || value === 'json') return value;
  return process.stdout.isTTY && process.env['CI'] === undefined ? 'tty' : 'plain';
}

/**
 * An AbortSignal that fires on the first Ctrl-C or SIGTERM, so the core can stop cleanly; a second
 * one ends the process at once.
 */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort(name);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** The planning flags: which commands apply runs. A saved plan carries its own. */
export const selectionFlags = {
  target: Flags.string({
    description: 'run only this command (<id> or <package>/<id>) and what it needs; repeatable',
    multiple: true,
  }),
  exclude: Flags.string({
    description: 'do not run this command, nor what needs it; repeatable',
    multiple: true,
  }),
  prune: Flags.boolean({
    description: 'undo commands that were removed from the files, in reverse dependency order',
    default: false,
  }),
};

/**
 * `--output` for a command that prints one document (`text` for people first), and `--json`,
 * the same as `--output json`.
 */
export function documentOutputFlags<const T extends string>(modes: readonly [T, ...T[]]) {
  return {
    output: Flags.string({
      char: 'o',
      description: 'what to print: for people, or one JSON document (schemas/output/)',
      options: [...modes],
      default: modes[0],
    }),
    json: Flags.boolean({ description: 'the same as --output json' }),
  };
}

/** The output a document command was asked for. */
export function documentOutput(flags: { output: string; json: boolean }): string {
  return flags.json ? 'json' : flags.output;
}
