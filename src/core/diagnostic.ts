import { displayText } from './display-text.js';
/**
 * A problem found in the input, reported as a value so that every problem of a run is shown at
 * once. `path` is the field path inside the file (`commands.image.params.image_size`), empty for
 * problems of the file as a whole; `line` and `column` are 1-based.
 */
export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  path: string;
  message: string;
  /** A stable tag of the kind of problem, for tools and tests. */
  reason: DiagnosticReason;
}

export type DiagnosticReason =
  | 'io'
  | 'too-large'
  | 'syntax'
  | 'duplicate-key'
  | 'alias-limit'
  | 'schema'
  | 'unknown-resource'
  | 'unknown-action'
  | 'params'
  | 'unsafe-path'
  | 'unknown-need'
  | 'self-need'
  | 'cycle'
  | 'duplicate-package';

/** Renders one diagnostic the way a person reads it: `file:line:col path: message`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${String(d.line)}:${String(d.column)}`;
  return displayText(d.path === '' ? `${where} ${d.message}` : `${where} ${d.path}: ${d.message}`);
}

/** Orders diagnostics by file, then position, so output is stable. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.line - b.line || a.column - b.column || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}
