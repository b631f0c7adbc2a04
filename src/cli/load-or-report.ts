import type { Diagnostic } from '../core/diagnostic.js';
import { formatDiagnostic } from '../core/diagnostic.js';
import { SpinError } from '../core/errors.js';
import type { LoadResult } from '../load/load-packages.js';
import { loadPackages } from '../load/load-packages.js';

/**
 * Loads packages for a command that cannot go on with invalid input: returns them when every
 * file is valid, and otherwise throws an `invalid_package` error (exit 2) that lists every
 * diagnostic.
 */
export async function loadOrThrow(paths: string[], maxBytes?: number): Promise<LoadResult> {
  const result = await loadPackages(paths, maxBytes === undefined ? {} : { maxBytes });
  if (result.diagnostics.length > 0) {
    throw new SpinError(
      'invalid_package',
      diagnosticsReport(result.diagnostics, result.files.length),
      { details: { diagnostics: result.diagnostics } },
    );
  }
  if (result.packages.length === 0) {
    throw new SpinError('invalid_input', `no *.spin.yaml files found in ${paths.join(', ')}`);
  }
  return result;
}

/** Every diagnostic on its own line, then a count: what `spin validate` prints for bad input. */
export function diagnosticsReport(diagnostics: readonly Diagnostic[], fileCount: number): string {
  const files = new Set(diagnostics.map((d) => d.file)).size;
  const lines = diagnostics.map(formatDiagnostic);
  const problems =
    diagnostics.length === 1 ? '1 problem' : `${String(diagnostics.length)} problems`;
  lines.push(
    `${problems} in ${String(files)} of ${String(Math.max(fileCount, files))} file${fileCount === 1 ? '' : 's'}`,
  );
  return lines.join('\n');
}
