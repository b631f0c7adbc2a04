import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { load, YAMLException } from 'js-yaml';
import type { Diagnostic, DiagnosticReason } from '../core/diagnostic.js';
import { findAliasBomb } from './alias-check.js';
import { formatFieldPath } from './field-path.js';
import type { Finding } from './finding.js';
import { LineIndex } from './line-index.js';
import { checkPackageDocument } from './package-document.js';
import { betterSyntaxPosition } from './syntax-error-position.js';
import type { PackageSpec } from '../core/package.js';
import type { Validators } from './validators.js';
import {
  collectDuplicateKeys,
  locate,
  positionRecorder,
  type PositionNode,
} from './yaml-positions.js';

/** Limits that keep a hostile file from costing more than a fair one. */
export interface LoadLimits {
  maxBytes: number;
  maxAliases: number;
  maxAliasExpansion: number;
}

export const defaultLoadLimits: LoadLimits = {
  maxBytes: 5 * 1024 * 1024,
  maxAliases: 1000,
  maxAliasExpansion: 100_000,
};

/** A file's package when it is valid, and every diagnostic found in it. */
export interface FileResult {
  package?: PackageSpec;
  diagnostics: Diagnostic[];
}

/**
 * Parses and checks one package file. The common path is one js-yaml parse and one schema
 * pass; only a file with problems is parsed a second time, recording node positions, to place
 * each diagnostic at its line and column. Duplicate keys are found in that second pass too,
 * every one of them, in linear time.
 */
export function loadPackageText(
  file: string,
  source: string,
  validators: Validators,
  limits: LoadLimits = defaultLoadLimits,
): FileResult {
  // js-yaml drops a byte-order mark before parsing; drop it here too, or every offset it
  // reports would be one short of the text's and no position could be found.
  const text = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
  let document: unknown;
  let positions: PositionNode | undefined;
  const findings: Finding[] = [];
  try {
    document = load(text, { filename: file });
  } catch (error) {
    if (!(error instanceof YAMLException)) throw error;
    if (!error.reason.startsWith('duplicated mapping key'))
      return { diagnostics: [syntaxDiagnostic(file, text, error)] };
    // Parse again allowing duplicates (the last one wins), to report all of them at once.
    // A syntax error further on stops that parse too; it is then the one problem reported.
    const recorder = positionRecorder(text);
    try {
      document = load(text, { filename: file, json: true, listener: recorder.listener });
    } catch (later) {
      if (!(later instanceof YAMLException)) throw later;
      return { diagnostics: [syntaxDiagnostic(file, text, later)] };
    }
    positions = recorder.root();
    const lines = new LineIndex(text);
    for (const dup of collectDuplicateKeys(positions)) {
      findings.push({
        path: [...dup.path, dup.key],
        atKey: true,
        message: `duplicate key '${dup.key}' (first at line ${String(lines.position(dup.firstOffset).line)})`,
        reason: 'duplicate-key',
        offset: dup.offset,
      });
    }
  }

  if (document === undefined || document === null)
    return {
      diagnostics: [
        fileDiagnostic(file, 'schema', "no package here: the file has no 'package' or 'commands'"),
      ],
    };

  if (text.includes('*')) {
    const bomb = findAliasBomb(document, {
      maxAliases: limits.maxAliases,
      maxExpanded: limits.maxAliasExpansion,
    });
    if (bomb !== undefined)
      findings.push({
        path: bomb.path,
        atKey: false,
        message: bomb.message,
        reason: 'alias-limit',
      });
  }
  if (findings.some((f) => f.reason === 'alias-limit')) {
    return { diagnostics: place(file, text, findings, positions) };
  }
  if (typeof document !== 'object' || Array.isArray(document)) {
    findings.push({
      path: [],
      atKey: false,
      message: `must be a package: a mapping with 'package' and 'commands', not ${Array.isArray(document) ? 'a list' : 'a single value'}`,
      reason: 'schema',
    });
    return { diagnostics: place(file, text, findings, positions) };
  }

  const checked = checkPackageDocument(document, file, validators);
  findings.push(...checked.findings);
  if (findings.length === 0 && checked.package !== undefined) {
    const pkg = inFileOrder(checked.package, file, text);
    sources.set(pkg, source);
    return { package: pkg, diagnostics: [] };
  }
  return { diagnostics: place(file, text, findings, positions) };
}

/** The text each loaded package was read from, for `contentHash`. */
const sources = new WeakMap<PackageSpec, string>();

/**
 * The SHA-256 (hex) of the text a package was loaded from, exactly as read: a saved plan keeps it,
 * and applying that plan refuses a file that no longer hashes the same. Undefined for a package
 * not loaded from a file.
 */
export function contentHash(pkg: PackageSpec): string | undefined {
  const source = sources.get(pkg);
  return source === undefined ? undefined : sha256(source);
}

/** The SHA-256 (hex) of a text as UTF-8. */
export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * JavaScript lists an object's integer-like keys (`2`, `10`) first and in numeric order, whatever
 * the file says, and a command id may be such a key. For a package that has one, this puts the
 * commands back in file order, read from a positions parse; other packages pay nothing.
 */
function inFileOrder(pkg: PackageSpec, file: string, text: string): PackageSpec {
  if (!pkg.commands.some((c) => /^(?:0|[1-9][0-9]{0,9})$/.test(c.id))) return pkg;
  const recorder = positionRecorder(text);
  load(text, { filename: file, json: true, listener: recorder.listener });
  const ids = recorder.root().entries?.get('commands')?.value.entries?.keys() ?? [];
  const byId = new Map(pkg.commands.map((c) => [c.id, c]));
  const commands = [...ids].flatMap((id) => byId.get(id) ?? []);
  return commands.length === pkg.commands.length ? { ...pkg, commands } : pkg;
}

/** Gives findings their line and column, parsing with position events if not done yet. */
function place(
  file: string,
  text: string,
  findings: Finding[],
  known: PositionNode | undefined,
): Diagnostic[] {
  let root = known;
  if (root === undefined) {
    const recorder = positionRecorder(text);
    load(text, { filename: file, json: true, listener: recorder.listener });
    root = recorder.root();
  }
  const lines = new LineIndex(text);
  return findings.map((f) => ({
    file,
    ...lines.position(f.offset ?? locate(root, f.path, f.atKey)),
    path: formatFieldPath(f.path),
    message: f.message,
    reason: f.reason,
  }));
}

function syntaxDiagnostic(file: string, text: string, error: YAMLException): Diagnostic {
  const mark = error.mark as { position?: number; line?: number; column?: number } | undefined;
  const better = betterSyntaxPosition(text, error);
  // js-yaml's offset is right where its line and column are not (a NUL byte is reported on
  // line 1 whatever its line), so the offset is turned into a position here.
  const offset = better?.offset ?? mark?.position;
  return {
    file,
    ...(offset === undefined
      ? { line: (mark?.line ?? 0) + 1, column: (mark?.column ?? 0) + 1 }
      : new LineIndex(text).position(Math.min(offset, text.length))),
    path: '',
    message: `YAML syntax error: ${better?.message ?? error.reason}`,
    reason: 'syntax',
  };
}

/**
 * The diagnostic of a file whose package name another file already defines, placed on its
 * `package:` key. `spin validate`, `spin apply` and `spin watch` all report it this way.
 */
export function duplicatePackageDiagnostic(
  file: string,
  text: string,
  name: string,
  definedIn: string,
): Diagnostic {
  const message = `package '${name}' is already defined in ${definedIn}`;
  const finding: Finding = { path: ['package'], atKey: true, message, reason: 'duplicate-package' };
  return (
    place(file, text, [finding], undefined)[0] ?? fileDiagnostic(file, 'duplicate-package', message)
  );
}

/**
 * Where command `id` is written in `file` (its key under `commands:`), or undefined when the
 * file cannot be read or parsed now. For messages only: it reads and parses the file again.
 */
export async function commandPosition(
  file: string,
  id: string,
): Promise<{ line: number; column: number } | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const recorder = positionRecorder(text);
    load(text, { filename: file, json: true, listener: recorder.listener });
    return new LineIndex(text).position(locate(recorder.root(), ['commands', id], true));
  } catch {
    return undefined;
  }
}

/** A diagnostic about the file as a whole (cannot be read, too large). */
export function fileDiagnostic(
  file: string,
  reason: DiagnosticReason,
  message: string,
): Diagnostic {
  return { file, line: 1, column: 1, path: '', message, reason };
}
