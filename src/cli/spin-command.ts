import { Command } from '@oclif/core/command';
import * as Errors from '@oclif/core/errors';
import { SpinError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { mappedStack } from './mapped-stack.js';
import { displayText } from '../core/display-text.js';

/** Resolves once everything written to `stream` so far is written out. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    stream.write('', () => {
      resolve();
    });
  });
}

/**
 * The base of every spin command: turns a thrown SpinError into its message, suggestions and
 * documented exit code; usage errors from oclif's parser (unknown flag, missing argument) become
 * exit 2; anything else is a bug, and oclif prints it with its stack, whose frames in the bundle
 * point at the sources (mapped-stack.ts).
 */
export abstract class SpinCommand extends Command {
  protected override async catch(error: Error & { exitCode?: number }): Promise<void> {
    if (error instanceof SpinError) {
      if (error.code === 'invalid_package') {
        // A list of diagnostics, each already naming its file and line.
        this.logToStderr(error.message);
      } else {
        const hints = error.suggestions.map((s) => `\n  hint: ${s}`).join('');
        this.logToStderr(displayText(`error: ${error.message}${hints}`));
      }
      await this.exitWith(error.exitCode);
    }
    if (error instanceof Errors.ExitError) throw error;
    if (error instanceof Errors.CLIError && error.oclif.exit === 2) {
      this.logToStderr(displayText(`error: ${error.message}\nSee more help with --help`));
      await this.exitWith(ExitCode.invalidInput);
    }
    if (error.stack !== undefined) error.stack = mappedStack(error.stack);
    await super.catch(error);
  }

  /**
   * Exits with `code` once what was written to stdout and stderr has left the process: exiting
   * at once would cut output to a pipe short (at 64 KiB here), which CI reads.
   */
  protected async exitWith(code: number): Promise<never> {
    await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
    return this.exit(code);
  }
}
