import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import type { Diagnostic } from '../core/diagnostic.js';
import { fileDiagnostic } from './load-package-file.js';

/**
 * The file's text; a diagnostic when it cannot be read or is over the cap (checked on the open
 * file, before reading it); undefined when it does not exist (any more). Synchronous on purpose:
 * package files are small and read one after the other, and four thread-pool round trips per
 * file cost more than the read itself when a directory holds a hundred of them.
 */
export function readPackageFile(
  file: string,
  maxBytes: number,
): Promise<string | Diagnostic | undefined> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return Promise.resolve(undefined);
    return Promise.resolve(fileDiagnostic(file, 'io', `cannot read: ${code ?? String(error)}`));
  }
  try {
    const { size } = fstatSync(fd);
    if (size > maxBytes) {
      return Promise.resolve(
        fileDiagnostic(
          file,
          'too-large',
          `file is ${String(size)} bytes, over the limit of ${String(maxBytes)} (raise it with --max-bytes)`,
        ),
      );
    }
    return Promise.resolve(readFileSync(fd, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return Promise.resolve(fileDiagnostic(file, 'io', `cannot read: ${code ?? String(error)}`));
  } finally {
    closeSync(fd);
  }
}
