import { Command, Errors } from '@oclif/core';
import { SpinError, messageOf } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';

/**
 * The base of every spin command: turns a thrown SpinError into its message, suggestions and
 * documented exit code; usage errors from oclif's parser become exit 2; anything else is a bug
 * and says so.
 */
export abstract class SpinCommand extends Command {
  protected override async catch(error: Error & { exitCode?: number }): Promise<void> {
    if (error instanceof SpinError) {
      const hints = error.suggestions.map((s) => `\n  hint: ${s}`).join('');
      this.logToStderr(`error: ${error.message}${hints}`);
      this.exit(error.exitCode);
    }
    if (error instanceof Errors.ExitError) throw error;
    // oclif's own parse errors (unknown flag, missing argument) are usage errors.
    if (error.constructor.name.endsWith('Error') && 'parse' in error) {
      this.logToStderr(`error: ${error.message}`);
      this.exit(ExitCode.invalidInput);
    }
    if (error instanceof Errors.CLIError && error.oclif.exit === 2) {
      this.logToStderr(`error: ${messageOf(error)}`);
      this.exit(ExitCode.invalidInput);
    }
    return super.catch(error);
  }
}
