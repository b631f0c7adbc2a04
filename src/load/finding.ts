import type { DiagnosticReason } from '../core/diagnostic.js';
import type { FieldPath } from './field-path.js';

/**
 * A problem found in a document before it has a position: the field path it is about, and
 * whether it is reported at the field's key (an unknown field) or its value. The loader turns
 * findings into diagnostics once, for the whole file.
 */
export interface Finding {
  path: FieldPath;
  atKey: boolean;
  message: string;
  reason: DiagnosticReason;
  /** Where the problem is, when the parser already knows (a duplicate key). */
  offset?: number;
}
