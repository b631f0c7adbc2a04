import { load, loadAll, type YAMLException } from 'js-yaml';
import { LineIndex } from './line-index.js';

/**
 * Where a YAML syntax error should be shown, and how to word it, when js-yaml's own mark points
 * somewhere unhelpful: an unclosed quote is reported at the end of the file, an unknown alias or
 * tag after its name, a second document at 1:1, a missing `}` wherever the parser gave up. This
 * runs only for a file that failed to parse: it parses once more, tracking the nodes that were
 * open when the error was thrown, and points at the one the error is about. Returns undefined
 * when js-yaml's mark is the best there is. `text` must not start with a byte-order mark.
 */
export function betterSyntaxPosition(
  text: string,
  error: YAMLException,
): { offset: number; message?: string } | undefined {
  const reason = error.reason;
  if (reason.startsWith('expected a single document')) {
    const second = secondDocumentOffset(text);
    return second === undefined
      ? undefined
      : { offset: second, message: 'a package is one YAML document, but a second one starts here' };
  }
  const open = openNodesAtError(text);
  const innermost = (accept: (c: string) => boolean, skipTag = true): number | undefined => {
    for (let i = open.length - 1; i >= 0; i--) {
      const at = skipProperties(text, open[i] ?? 0, skipTag);
      if (accept(text.charAt(at))) return at;
    }
    return undefined;
  };

  const quote = /within a (single|double) quoted scalar/.exec(reason);
  if (quote !== null) {
    const at = innermost((c) => c === (quote[1] === 'single' ? "'" : '"'));
    return at === undefined
      ? undefined
      : { offset: at, message: `${quote[1] ?? ''} quoted string is never closed` };
  }
  if (reason.startsWith('unidentified alias')) {
    const at = innermost((c) => c === '*');
    return at === undefined ? undefined : { offset: at };
  }
  if (reason.startsWith('unknown tag')) {
    const at = innermost((c) => c === '!', false);
    if (at === undefined) return undefined;
    const tag = /^![^\s,[\]{}]*/.exec(text.slice(at))?.[0] ?? '!';
    return { offset: at, message: `unknown tag ${tag}` };
  }
  if (reason.includes('flow collection')) {
    const at = innermost((c) => c === '{' || c === '[');
    if (at === undefined) return undefined;
    const { line, column } = new LineIndex(text).position(at);
    return {
      offset: offsetOf(text, error),
      message: `${reason} (in the '${text.charAt(at)}' at line ${String(line)}, column ${String(column)}; is a '${text.charAt(at) === '{' ? '}' : ']'}' missing?)`,
    };
  }
  return undefined;
}

/** The offsets where the nodes still open when the parse failed begin, outermost first. */
function openNodesAtError(text: string): number[] {
  const open: number[] = [];
  try {
    load(text, {
      json: true,
      listener: (event, state) => {
        if (event === 'open') open.push(skipSpace(state.input, state.position));
        else open.pop();
      },
    });
  } catch {
    // The error is the one being placed; what matters is what was open when it was thrown.
  }
  return open;
}

/** The offset of the `---` that starts the second document, or of its first node. */
function secondDocumentOffset(text: string): number | undefined {
  let depth = 0;
  const starts: number[] = [];
  try {
    loadAll(text, undefined, {
      json: true,
      listener: (event, state) => {
        if (event === 'open') {
          if (depth === 0) starts.push(state.position);
          depth++;
        } else depth--;
      },
    });
  } catch {
    return undefined;
  }
  const second = starts[1];
  if (second === undefined) return undefined;
  const marker = text.lastIndexOf('\n---', second);
  return marker === -1 ? skipSpace(text, second) : marker + 1;
}

/** Skips an anchor (`&a `) and, with `skipTag`, a tag (`!t `) in front of a node's content. */
function skipProperties(text: string, offset: number, skipTag: boolean): number {
  let at = offset;
  for (;;) {
    const property = /^[&!][^\s,[\]{}]*[ \t]+/.exec(text.slice(at, at + 256))?.[0];
    if (property === undefined || (property.startsWith('!') && !skipTag)) return at;
    at = skipSpace(text, at + property.length);
  }
}

function skipSpace(text: string, offset: number): number {
  let at = offset;
  for (;;) {
    const c = text.charCodeAt(at);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) at++;
    else if (c === 0x23) while (at < text.length && text.charCodeAt(at) !== 0x0a) at++;
    else if (c === 0x3a && /[\s]/.test(text.charAt(at + 1))) at++;
    else return at;
  }
}

function offsetOf(text: string, error: YAMLException): number {
  const mark = error.mark as { position?: number } | undefined;
  return Math.min(mark?.position ?? 0, text.length);
}
