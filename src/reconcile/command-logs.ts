import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { agentRoots } from '../agents/agent-roots.js';
import { confinePath, type ConfinedPath } from '../agents/confined-path.js';
import { vmIdOf } from '../agents/emulation/vm-config.js';
import { errnoOf } from '../agents/fs-util.js';
import { SpinError } from '../core/errors.js';
import {
  attemptFiles,
  keptAttempts,
  logSegment,
  logsRoot,
  parseLogLines,
  type LogLine,
} from '../executor/attempt-log.js';
import { readState } from './state-file.js';

/**
 * Where the output asked for is kept: the attempt logs of a command, or the serial console of a
 * VM (for an `emulation.start` command, or `--vm`).
 */
export type LogSource =
  | {
      kind: 'attempts';
      package: string;
      command: string;
      dir: string;
      /** Why the command's last run did not run it (it was skipped or cancelled). */
      notRun?: string;
      /** What its last run said when it succeeded (a quiet success leaves no log). */
      succeeded?: string;
    }
  | { kind: 'console'; vm: string; dir: string; package?: string; command?: string };

/** Which part of a source to show; every field narrows it. */
export interface LogSelection {
  /** That attempt of the command (default: the last), among those kept. */
  attempt?: number;
  /** For a console: that many boots back (0, the default, is the current `console.log`). */
  boot?: number;
  /** Only what was written from this instant on (ms since the epoch). */
  since?: number;
  /** Only the last this many lines. */
  tail?: number;
}

/** A piece of output: lines of one attempt's log, or console text. */
export type LogChunk =
  | { kind: 'attempt'; attempt: number; path: string; lines: LogLine[] }
  | { kind: 'console'; path: string; text: string; replaced?: boolean };

/**
 * The source of `target` (`package/command`, found in the state file or, for a command whose
 * first run has not ended, by its logs) or of VM `vm`. The source of a start command is its VM's
 * console unless `console` is false (then its own attempts). A package, command or VM that is
 * unknown is `not_found` (exit 2), naming what is known.
 */
export async function logSource(options: {
  home: string;
  statePath: string;
  target?: { package: string; command: string };
  vm?: string;
  console?: boolean;
}): Promise<LogSource> {
  const { home, target } = options;
  if (options.vm !== undefined) return consoleSource(home, options.vm);
  if (target === undefined)
    throw new SpinError('usage', 'name a command (package/command) or --vm');
  const dir = await attemptsDir(home, target.package, target.command);
  const attempts: LogSource = { kind: 'attempts', ...target, dir };
  const pkg = (await readState(options.statePath))?.packages[target.package];
  const record = pkg?.commands[target.command];
  if (record === undefined) {
    if (keptAttempts(dir).length > 0) return attempts;
    throw pkg === undefined
      ? new SpinError('not_found', `no package '${target.package}' in ${options.statePath}`, {
          details: { package: target.package },
        })
      : new SpinError('not_found', `package ${target.package} has no command '${target.command}'`, {
          details: { package: target.package, command: target.command },
          suggestions: [`its commands: ${Object.keys(pkg.commands).join(', ')}`],
        });
  }
  if (record.status === 'skipped' || record.status === 'cancelled') {
    attempts.notRun = `it was ${record.status}${record.reason === undefined ? '' : `: ${record.reason}`}`;
  }
  if (record.status === 'succeeded') attempts.succeeded = record.output.split('\n', 1)[0] ?? '';
  if (record.resource === 'emulation' && record.action === 'start' && options.console !== false) {
    return { ...(await consoleSource(home, vmIdOf(record.params))), ...target };
  }
  return attempts;
}

async function attemptsDir(home: string, pkg: string, command: string): Promise<string> {
  return resolved(
    await confinePath(logsRoot(home), `${logSegment(pkg)}/${logSegment(command)}`, 'relative'),
    `${pkg}/${command}`,
  );
}

async function consoleSource(home: string, vm: string): Promise<LogSource> {
  let id: string;
  try {
    id = vmIdOf({ id: vm });
  } catch {
    throw new SpinError('usage', `--vm: '${vm}' is not a VM id (an integer or a short name)`);
  }
  const dir = await confinePath(agentRoots(home).vms, id, 'name');
  if (dir.kind !== 'directory') {
    throw new SpinError('not_found', `no VM '${id}' (no ${dir.path})`, { details: { vm: id } });
  }
  return { kind: 'console', vm: id, dir: dir.path };
}

function resolved(path: ConfinedPath, what: string): string {
  if (path.kind !== 'missing' && path.kind !== 'directory') {
    throw new SpinError('path_outside_root', `the log directory of ${what} is not a directory`);
  }
  return path.path;
}

/** The console files of a VM, the current one first, then `console.log.1`, `.2`, … (older). */
export function consoleFiles(dir: string): string[] {
  const rotated = readdirSync(dir)
    .map((name) => /^console\.log\.([1-9][0-9]{0,5})$/.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  return [join(dir, 'console.log'), ...rotated.map((n) => join(dir, `console.log.${String(n)}`))];
}

/** What `readLog` found: the chunks, or why there are none though nothing is wrong. */
export interface LogRead {
  chunks: LogChunk[];
  /** The command's last run succeeded printing nothing (then no log of it is kept). */
  quiet?: string;
}

/**
 * What `selection` picks of `source`, as it is now. `not_found` (exit 2) when there is nothing:
 * no attempt kept (unless the last run succeeded quietly), no such attempt, or a console not
 * written yet.
 */
export function readLog(source: LogSource, selection: LogSelection): LogRead {
  if (source.kind === 'console') {
    return { chunks: tailChunks(consoleChunks(source, selection), selection.tail) };
  }
  if (keptAttempts(source.dir).length === 0 && source.succeeded !== undefined) {
    if (selection.attempt === undefined) {
      const said = source.succeeded === '' ? '' : `: ${source.succeeded}`;
      return {
        chunks: [],
        quiet: `${source.package}/${source.command} printed nothing: its last run succeeded${said}`,
      };
    }
  }
  const numbers = selectedAttempts(source, selection);
  const chunks = numbers.map((n) => attemptChunk(source.dir, n, selection.since));
  return { chunks: tailChunks(chunks, selection.tail) };
}

/** The attempts a selection shows: the one asked for, all kept with `since`, else the last. */
function selectedAttempts(
  source: Extract<LogSource, { kind: 'attempts' }>,
  selection: LogSelection,
): number[] {
  const kept = keptAttempts(source.dir);
  const name = `${source.package}/${source.command}`;
  if (kept.length === 0) {
    throw new SpinError(
      'not_found',
      `no output of ${name} is kept: ${source.notRun ?? 'it has not run since spin keeps logs'}`,
      {
        details: { package: source.package, command: source.command },
      },
    );
  }
  if (selection.attempt !== undefined) {
    if (!kept.includes(selection.attempt)) {
      throw new SpinError(
        'not_found',
        `attempt ${String(selection.attempt)} of ${name} is not kept`,
        {
          details: { attempts: kept },
          suggestions: [`kept attempts: ${kept.join(', ')}`],
        },
      );
    }
    return [selection.attempt];
  }
  return selection.since === undefined ? kept.slice(-1) : kept;
}

/** The lines of attempt `n` kept in `dir` (both its segments), from `since` on. */
export function attemptChunk(dir: string, n: number, since: number | undefined): LogChunk {
  const files = attemptFiles(dir, n);
  const text = readOrEmpty(files.previous) + readOrEmpty(files.current);
  const lines = parseLogLines(text).filter(
    (line) => since === undefined || line.at === undefined || Date.parse(line.at) >= since,
  );
  return { kind: 'attempt', attempt: n, path: files.current, lines };
}

function consoleChunks(
  source: Extract<LogSource, { kind: 'console' }>,
  selection: LogSelection,
): LogChunk[] {
  const files = consoleFiles(source.dir);
  const chosen =
    selection.since !== undefined
      ? files.filter((f) => (mtimeOf(f) ?? 0) >= (selection.since ?? 0)).reverse()
      : [files[selection.boot ?? 0]].filter((f): f is string => f !== undefined);
  const chunks: LogChunk[] = [];
  for (const path of chosen) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') continue;
      throw error;
    }
    chunks.push({ kind: 'console', path, text });
  }
  if (chunks.length === 0 && selection.since === undefined) {
    const boot = selection.boot ?? 0;
    throw new SpinError(
      'not_found',
      boot === 0
        ? `VM ${source.vm} has no console yet: it has not been started`
        : `VM ${source.vm} has no console of ${String(boot)} boot${boot === 1 ? '' : 's'} back`,
      { details: { vm: source.vm } },
    );
  }
  return chunks;
}

/** The last `tail` lines of chunks, dropping whole chunks and cutting the first one kept. */
export function tailChunks(chunks: LogChunk[], tail: number | undefined): LogChunk[] {
  if (tail === undefined) return chunks;
  let left = tail;
  const kept: LogChunk[] = [];
  for (const chunk of [...chunks].reverse()) {
    if (left <= 0) break;
    if (chunk.kind === 'attempt') {
      kept.unshift({ ...chunk, lines: chunk.lines.slice(Math.max(0, chunk.lines.length - left)) });
      left -= chunk.lines.length;
    } else {
      const lines = chunk.text.split('\n');
      const ended = lines.at(-1) === '';
      if (ended) lines.pop();
      const last = lines.slice(Math.max(0, lines.length - left));
      kept.unshift({ ...chunk, text: `${last.join('\n')}${ended && last.length > 0 ? '\n' : ''}` });
      left -= lines.length;
    }
  }
  return kept;
}

/** The text of a file, or '' when it is not there. */
export function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return '';
    throw error;
  }
}

/** When a file was last written (ms since the epoch); undefined when it is not there. */
export function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}
