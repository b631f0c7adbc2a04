/**
 * Text from a package (ids, names, paths) made safe to print in a terminal: control characters
 * (but newline and tab) and the bidirectional overrides and isolates, which can make a line read
 * as something else (U+202E reverses what follows), are shown as `\u{202e}`; a run of more than
 * 240 characters without a space keeps its first 100 and says how long it was, so that an error
 * never echoes a 100,000-character id whole.
 */
export function displayText(text: string): string {
  return text
    .replace(unsafe, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}}`)
    .replace(longRun, (run) => `${run.slice(0, 100)}…(${String(run.length)} characters)`);
}

/** The characters `displayText` escapes: controls but newline and tab, bidi marks. */
const unsafe = new RegExp(
  // eslint-disable-next-line no-control-regex -- these are the characters it escapes
  '[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]',
  'g',
);
const longRun = /\S{241,}/g;

/**
 * The bidirectional controls (marks, embeddings, overrides, isolates): in a name they make it
 * read as another (`a\u202eb` shows as `ab` reversed), so names and paths refuse them.
 */
export const bidiControls = '\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';

/** Whether `text` holds a bidirectional control (see `bidiControls`). */
export function hasBidiControl(text: string): boolean {
  return bidiPattern.test(text);
}
const bidiPattern = new RegExp(`[${bidiControls}]`);
