import { bidiControls, hasBidiControl } from '../core/display-text.js';

/**
 * The two kinds of path a package may name. `name`: one path component (a volume, an image
 * file). `relative`: a relative path of components, each a `name`. Neither may be absolute,
 * contain `..` or `.`, a NUL, a backslash, a control character or a bidirectional control. The loader checks these at
 * load time; agents check again and confine the resolved path to their root at run time.
 */
export type PathKind = 'name' | 'relative';

const maxComponent = 255;
const maxPath = 1024;

/** Why `value` is not a safe path of `kind`, or undefined when it is. */
export function pathProblem(value: string, kind: PathKind): string | undefined {
  if (value.length === 0) return 'must not be empty';
  if (value.includes('\0')) return 'must not contain a NUL byte';
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  if (/[\u0001-\u001f\u007f]/.test(value)) return 'must not contain control characters';
  if (hasBidiControl(value))
    return 'must not contain bidirectional controls (such as U+202E), which make a name read as another';
  if (value.includes('\\')) return "must not contain '\\'";
  if (value.startsWith('/')) return 'must be relative, not an absolute path';
  if (value.length > maxPath) return `must be at most ${String(maxPath)} characters`;
  const parts = value.split('/');
  if (parts.includes('..')) return "must not contain '..'";
  if (kind === 'name' && parts.length > 1) return "must be a single name, without '/'";
  for (const part of parts) {
    if (part === '.' || part === '') return "must not contain empty or '.' components";
    if (part.length > maxComponent)
      return `must have components of at most ${String(maxComponent)} characters`;
  }
  return undefined;
}

/**
 * The same rules as `pathProblem`, as JSON Schema patterns, so that compiled validators need no
 * code of spin's. A property test keeps the two in agreement.
 */
export const pathPatterns: Record<PathKind, string> = {
  name: `^(?!\\.{1,2}$)[^/\\\\\\u0000-\\u001f\\u007f${bidiControls}]+$`,
  relative: `^(?!/)(?!.*(?:^|/)\\.{0,2}(?:/|$))[^\\\\\\u0000-\\u001f\\u007f${bidiControls}]+$`,
};
