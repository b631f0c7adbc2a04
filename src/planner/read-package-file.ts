import { open } from 'node:fs/promises';
import type { Diagnostic } from '../core/diagnostic.js';
import { fileDiagnostic } from './load-package-file.js';

/**
 * The file's text; a diagnostic when it cannot be read or is over the cap (checked before
 * reading); undefined when it does not exist (any more).
 */
export async function readPackageFile(
  file: string,
  maxBytes: number,
): Promise<string | Diagnostic | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    return fileDiagnostic(file, 'io', `cannot read: ${code ?? String(error)}`);
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) {
      return fileDiagnostic(
        file,
        'too-large',
        `file is ${String(size)} bytes, over the limit of ${String(maxBytes)} (raise it with --max-bytes)`,
      );
    }
    return await handle.readFile('utf8');
  } catch (error) {
    return fileDiagnostic(
      file,
      'io',
      `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  } finally {
    await handle.close();
  }
}
