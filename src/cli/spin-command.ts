import { Command } from '@oclif/core/command';
import * as Errors from '@oclif/core/errors';
import { SpinError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { mappedStack } from './mapped-stack.js';
import { displayText } from '../core/display-text.js';
import { outputFormatVersion } from '../core/output-schemas.js';

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
      this.reportError(error);
      await this.exitWith(error.exitCode);
    }
    if (error instanceof Errors.ExitError) throw error;
    if (error instanceof Errors.CLIError && error.oclif.exit === 2) {
      this.reportError(new SpinError('usage', `${error.message}\nSee more help with --help`));
      await this.exitWith(ExitCode.invalidInput);
    }
    if (error.stack !== undefined) error.stack = mappedStack(error.stack);
    await super.catch(error);
  }

  /**
   * Says what went wrong: with `--output json` (or `--json`) as one `error` document on stdout
   * (schemas/output/error.schema.json), so a CI job parses failures as it parses results;
   * otherwise as text on stderr: the message and its hints, or, for invalid packages, every
   * diagnostic naming its file and line.
   */
  protected reportError(error: SpinError): void {
    if (this.wantsJson()) {
      const diagnostics = error.details['diagnostics'];
      const details = Object.fromEntries(
        Object.entries(error.details).filter(([key]) => key !== 'diagnostics'),
      );
      const doc = {
        format_version: outputFormatVersion,
        kind: 'error',
        error: {
          code: error.code,
          message: error.message,
          exit_code: error.exitCode,
          ...(error.suggestions.length === 0 ? {} : { suggestions: error.suggestions }),
          ...(Object.keys(details).length === 0 ? {} : { details }),
          ...(Array.isArray(diagnostics) ? { diagnostics } : {}),
        },
      };
      this.log(JSON.stringify(doc));
      return;
    }
    if (error.code === 'invalid_package') {
      // A list of diagnostics, each already naming its file and line.
      this.logToStderr(error.message);
      return;
    }
    const hints = error.suggestions.map((s) => `\n  hint: ${s}`).join('');
    this.logToStderr(displayText(`error: ${error.message}${hints}`));
  }

  /**
   * Prints one JSON document of `kind` (schemas/output/<kind>.schema.json): `body` with the
   * format version and kind every document carries.
   */
  protected printDocument(kind: string, body: Record<string, unknown>): void {
    this.log(JSON.stringify({ format_version: outputFormatVersion, kind, ...body }, null, 2));
  }

  /** Whether the command line asks for JSON: `--json`, `-o json`, `--output json` or `=json`. */
  protected wantsJson(): boolean {
    const argv = this.argv;
    return argv.some(
      (arg, i) =>
        arg === '--json' ||
        arg === '--output=json' ||
        arg === '-ojson' ||
        arg === '-o=json' ||
        ((arg === '-o' || arg === '--output') && argv[i + 1] === 'json'),
    );
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
