import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import type { SourceMapPayload } from 'node:module';
import { dirname, resolve } from 'node:path';

const frame = /(?<=\(|at )(\/[^():\s]+):(\d+):(\d+)/g;

/**
 * `stack` with every frame in a file that has a source map beside it (`<file>.map`: the bundle,
 * dist/bundle/spin.cjs) pointed at the place in the source it was built from: `src/…/x.ts:12:5`
 * instead of a line of the bundle. Other frames stay as they are. Reads the maps only when called,
 * which is when an internal error is about to be printed.
 */
export function mappedStack(stack: string): string {
  const maps = new Map<string, SourceMap | undefined>();
  return stack.replace(frame, (whole, file: string, line: string, column: string) => {
    if (!maps.has(file)) maps.set(file, readMap(file));
    const entry = maps.get(file)?.findEntry(Number(line) - 1, Number(column) - 1);
    if (entry === undefined || !('originalSource' in entry)) return whole;
    const source = resolve(dirname(file), entry.originalSource);
    return `${source}:${String(entry.originalLine + 1)}:${String(entry.originalColumn + 1)}`;
  });
}

function readMap(file: string): SourceMap | undefined {
  try {
    return new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as SourceMapPayload);
  } catch {
    return undefined;
  }
}
