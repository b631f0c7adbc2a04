import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** The file name ending that marks a spin package. */
export const packageSuffix = '.spin.yaml';

/**
 * Expands the paths given on the command line into package files: a file stands for itself,
 * a directory for every `*.spin.yaml` below it, sorted by path so that runs are repeatable.
 * Paths that do not exist are returned in `missing`.
 */
export async function expandInputs(
  paths: readonly string[],
): Promise<{ files: string[]; missing: string[] }> {
  const files: string[] = [];
  const missing: string[] = [];
  const seen = new Set<string>();
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch {
      missing.push(path);
      continue;
    }
    const found = info.isDirectory() ? await packagesBelow(path) : [path];
    for (const file of found) {
      if (!seen.has(file)) {
        seen.add(file);
        files.push(file);
      }
    }
  }
  return { files, missing };
}

async function packagesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith(packageSuffix))
    .map((e) => join(e.parentPath, e.name))
    .filter(
      (file) =>
        !relative(dir, file)
          .split('/')
          .some((part) => part === 'node_modules' || part.startsWith('.')),
    )
    .sort();
}
