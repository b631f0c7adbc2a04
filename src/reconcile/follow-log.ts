import { basename, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { SpinError } from '../core/errors.js';
import { attemptFiles, keptAttempts, parseLogLines } from '../executor/attempt-log.js';
import {
  attemptChunk,
  consoleFiles,
  mtimeOf,
  readOrEmpty,
  tailChunks,
  type LogChunk,
  type LogSelection,
  type LogSource,
} from './command-logs.js';
import { followFile, type FollowedChunk } from './follow-file.js';

/**
 * Follows a source until `signal` fires: first what `selection` picks of it now (as `readLog`,
 * but nothing kept is no error: the follow waits for it), then each piece as it is written. A
 * command's log is followed into its next attempts as they begin (unless `selection.attempt`
 * names one); a console across the VM's restarts, whether its file is rotated away
 * (`console.log` → `console.log.1`, a new `console.log`) or truncated. A console chunk that
 * begins a new file is marked `replaced`.
 */
export async function* followLog(
  source: LogSource,
  selection: LogSelection,
  signal: AbortSignal,
): AsyncGenerator<LogChunk, void, undefined> {
  if (source.kind === 'console') yield* followConsole(source, selection, signal);
  else yield* followAttempts(source, selection, signal);
}

async function* followConsole(
  source: Extract<LogSource, { kind: 'console' }>,
  selection: LogSelection,
  signal: AbortSignal,
): AsyncGenerator<LogChunk, void, undefined> {
  if ((selection.boot ?? 0) > 0) {
    throw new SpinError(
      'usage',
      '--follow follows the current boot; --boot goes with it only as 0',
    );
  }
  const current = join(source.dir, 'console.log');
  const earlier: LogChunk[] =
    selection.since === undefined
      ? []
      : consoleFiles(source.dir)
          .slice(1)
          .filter((f) => (mtimeOf(f) ?? 0) >= (selection.since ?? 0))
          .reverse()
          .map((path) => ({ kind: 'console', path, text: readOrEmpty(path) }));
  let decoder = new StringDecoder('utf8');
  let first = true;
  for await (const piece of followFile({ dir: source.dir, current: () => current, signal })) {
    if (piece.fresh) decoder = new StringDecoder('utf8');
    const text = decoder.write(piece.data);
    if (first) {
      first = false;
      const now: LogChunk[] = text === '' ? [] : [{ kind: 'console', path: piece.path, text }];
      yield* tailChunks([...earlier, ...now], selection.tail);
    } else if (text !== '' || piece.replaced) {
      yield {
        kind: 'console',
        path: piece.path,
        text,
        ...(piece.replaced ? { replaced: true } : {}),
      };
    }
  }
}

async function* followAttempts(
  source: Extract<LogSource, { kind: 'attempts' }>,
  selection: LogSelection,
  signal: AbortSignal,
): AsyncGenerator<LogChunk, void, undefined> {
  const fixed = selection.attempt;
  const kept = keptAttempts(source.dir);
  if (fixed !== undefined && !kept.includes(fixed)) {
    throw new SpinError(
      'not_found',
      `attempt ${String(fixed)} of ${source.package}/${source.command} is not kept`,
      { suggestions: [kept.length > 0 ? `kept attempts: ${kept.join(', ')}` : 'none is kept'] },
    );
  }
  const latest = (): number | undefined => fixed ?? keptAttempts(source.dir).at(-1);
  const earlier =
    selection.since === undefined || fixed !== undefined
      ? []
      : kept.slice(0, -1).map((n) => attemptChunk(source.dir, n, selection.since));
  const current = (): string | undefined => {
    const n = latest();
    return n === undefined ? undefined : attemptFiles(source.dir, n).current;
  };
  let partial = '';
  let decoder = new StringDecoder('utf8');
  let first = true;
  for await (const piece of followFile({ dir: source.dir, current, signal })) {
    const attempt = attemptOf(piece);
    if (piece.fresh) {
      partial = '';
      decoder = new StringDecoder('utf8');
    }
    // The segment an attempt's file was rotated from comes first when a follow begins with it.
    const before =
      first && attempt !== undefined ? readOrEmpty(attemptFiles(source.dir, attempt).previous) : '';
    const text = before + partial + decoder.write(piece.data);
    const end = text.lastIndexOf('\n') + 1;
    partial = text.slice(end);
    const lines = parseLogLines(text.slice(0, end), first).filter(
      (line) =>
        !first ||
        selection.since === undefined ||
        line.at === undefined ||
        Date.parse(line.at) >= selection.since,
    );
    if (first) {
      first = false;
      const now: LogChunk[] =
        attempt === undefined ? [] : [{ kind: 'attempt', attempt, path: piece.path, lines }];
      yield* tailChunks([...earlier, ...now], selection.tail);
    } else if (attempt !== undefined && lines.length > 0) {
      yield { kind: 'attempt', attempt, path: piece.path, lines };
    }
  }
}

/** The attempt number of a followed log file (`3.log`), or undefined for no file. */
function attemptOf(piece: FollowedChunk): number | undefined {
  const match = /^([1-9][0-9]*)\.log$/.exec(basename(piece.path));
  return match?.[1] === undefined ? undefined : Number(match[1]);
}
