import type { Diagnostic } from '../core/diagnostic.js';
import { compareDiagnostics } from '../core/diagnostic.js';
import type { PackageSpec } from '../core/package.js';
import { expandInputs } from './input-files.js';
import {
  defaultLoadLimits,
  duplicatePackageDiagnostic,
  fileDiagnostic,
  loadPackageText,
  type LoadLimits,
} from './load-package-file.js';
import { Validators } from './validators.js';
import { readPackageFile } from './read-package-file.js';

/** What the loader found: the valid packages, and every diagnostic of every file. */
export interface LoadResult {
  packages: PackageSpec[];
  diagnostics: Diagnostic[];
  files: string[];
}

/**
 * Loads packages from files and directories (see expandInputs), checks each, and checks them
 * together: two files may not define the same package. All problems are returned at once,
 * sorted by file and position; a package with any problem is not among `packages`.
 */
export async function loadPackages(
  paths: readonly string[],
  limits: Partial<LoadLimits> = {},
): Promise<LoadResult> {
  const effective = { ...defaultLoadLimits, ...limits };
  const { files, missing } = await expandInputs(paths);
  const diagnostics: Diagnostic[] = missing.map((p) =>
    fileDiagnostic(p, 'io', 'no such file or directory'),
  );
  const validators = Validators.load();
  const packages: PackageSpec[] = [];
  const owner = new Map<string, string>();

  for (const file of files) {
    const text =
      (await readPackageFile(file, effective.maxBytes)) ??
      fileDiagnostic(file, 'io', 'no such file or directory');
    if (typeof text !== 'string') {
      diagnostics.push(text);
      continue;
    }
    const result = loadPackageText(file, text, validators, effective);
    diagnostics.push(...result.diagnostics);
    const pkg = result.package;
    if (pkg === undefined) continue;
    const first = owner.get(pkg.name);
    if (first !== undefined) {
      diagnostics.push(duplicatePackageDiagnostic(file, text, pkg.name, first));
      continue;
    }
    owner.set(pkg.name, file);
    packages.push(pkg);
  }
  return { packages, diagnostics: diagnostics.sort(compareDiagnostics), files };
}
