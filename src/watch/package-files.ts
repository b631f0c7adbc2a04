import type { Diagnostic } from '../core/diagnostic.js';
import type { PackageSpec } from '../core/package.js';
import {
  defaultLoadLimits,
  duplicatePackageDiagnostic,
  loadPackageText,
  type LoadLimits,
} from '../load/load-package-file.js';
import { Validators } from '../load/validators.js';
import { readPackageFile } from '../load/read-package-file.js';

/**
 * What reading a package file again found.
 * - same: the text is what was read last time (a touch, or a save of the same content);
 * - loaded: a valid package, which this file now owns, with the text it was read from;
 *   `released` names a package the file defined before and no longer does;
 * - invalid: every problem of the file; its last good package (`kept`) stays as it was;
 * - removed: the file is gone; `released` names the package it defined.
 */
export type FileVerdict =
  | { kind: 'same' }
  | { kind: 'loaded'; pkg: PackageSpec; text: string; released?: string }
  | { kind: 'invalid'; diagnostics: Diagnostic[]; kept?: string }
  | { kind: 'removed'; released?: string };

interface FileEntry {
  /** The text last read, or undefined when it could not be read. */
  text?: string;
  /** The package this file defines, from its last valid read. */
  owns?: string;
  /** The problems of the last read, while the file is invalid. */
  diagnostics?: Diagnostic[];
  /** A package another file owns, which this one also defines. */
  wants?: string;
}

/**
 * The package files of a watch and the packages they define. Two files may not define the same
 * package: the second is invalid (`duplicate-package`) until the first lets go of the name, and
 * is then worth reading again (`blockedOn`). Calls for one file must not overlap (the caller
 * reads each file through its own queue).
 */
export class PackageFiles {
  readonly #files = new Map<string, FileEntry>();
  readonly #owners = new Map<string, string>();
  readonly #limits: LoadLimits;
  readonly #validators = Validators.load();

  constructor(limits: Partial<LoadLimits> = {}) {
    this.#limits = { ...defaultLoadLimits, ...limits };
  }

  /** Every file read so far that is still there. */
  get files(): string[] {
    return [...this.#files.keys()];
  }

  /** The files that are invalid now, with their problems. */
  invalid(): { file: string; kept?: string; diagnostics: Diagnostic[] }[] {
    return [...this.#files].flatMap(([file, e]) =>
      e.diagnostics === undefined
        ? []
        : [{ file, diagnostics: e.diagnostics, ...(e.owns === undefined ? {} : { kept: e.owns }) }],
    );
  }

  /** Files refused because they define `name`, which another file held. */
  blockedOn(name: string): string[] {
    return [...this.#files].filter(([, e]) => e.wants === name).map(([file]) => file);
  }

  /** Forgets the text last read from `file`, so that the next read judges it afresh. */
  forget(file: string): void {
    const entry = this.#files.get(file);
    if (entry !== undefined) Reflect.deleteProperty(entry, 'text');
  }

  /** Reads `file` again and says what changed. */
  async read(file: string): Promise<FileVerdict> {
    const text = await readPackageFile(file, this.#limits.maxBytes);
    const entry = this.#files.get(file);
    if (text === undefined) return this.#remove(file, entry);
    if (typeof text === 'string' && entry !== undefined && entry.text === text) {
      return { kind: 'same' };
    }
    const next: FileEntry = entry === undefined ? {} : { ...entry };
    this.#files.set(file, next);
    if (typeof text !== 'string') {
      Reflect.deleteProperty(next, 'text');
      return this.#invalid(next, [text]);
    }
    next.text = text;
    const result = loadPackageText(file, text, this.#validators, this.#limits);
    const pkg = result.package;
    if (pkg === undefined || result.diagnostics.length > 0) {
      return this.#invalid(next, result.diagnostics);
    }
    const owner = this.#owners.get(pkg.name);
    if (owner !== undefined && owner !== file) {
      next.wants = pkg.name;
      return this.#invalid(next, [duplicatePackageDiagnostic(file, text, pkg.name, owner)]);
    }
    Reflect.deleteProperty(next, 'diagnostics');
    Reflect.deleteProperty(next, 'wants');
    const released = next.owns !== undefined && next.owns !== pkg.name ? next.owns : undefined;
    if (released !== undefined) this.#owners.delete(released);
    next.owns = pkg.name;
    this.#owners.set(pkg.name, file);
    return released === undefined
      ? { kind: 'loaded', pkg, text }
      : { kind: 'loaded', pkg, text, released };
  }

  #invalid(entry: FileEntry, diagnostics: Diagnostic[]): FileVerdict {
    if (diagnostics[0]?.reason !== 'duplicate-package') Reflect.deleteProperty(entry, 'wants');
    entry.diagnostics = diagnostics;
    return entry.owns === undefined
      ? { kind: 'invalid', diagnostics }
      : { kind: 'invalid', diagnostics, kept: entry.owns };
  }

  #remove(file: string, entry: FileEntry | undefined): FileVerdict {
    if (entry === undefined) return { kind: 'same' };
    this.#files.delete(file);
    if (entry.owns === undefined) return { kind: 'removed' };
    this.#owners.delete(entry.owns);
    return { kind: 'removed', released: entry.owns };
  }
}
