import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SpinError } from '../core/errors.js';
import type { AttemptIdentity } from './agent.js';
import { confinePath } from './confined-path.js';
import { asSpinError, errnoOf, tempPathFor } from './fs-util.js';
import { defaultKillAfterMs, endGroup, liveGroupOf, type ProcessGroup } from './process-group.js';

/**
 * Where the programs of one attempt are recorded while they run: the spin home whose
 * `run/attempts/` holds the records, and the attempt they belong to.
 */
export interface AttemptTracking {
  home: string;
  attempt: AttemptIdentity;
}

/** The tracking of an action's programs, when it runs for a lease (observations do not). */
export function trackingOf(ctx: {
  roots: { home: string };
  attempt?: AttemptIdentity;
}): AttemptTracking | undefined {
  return ctx.attempt === undefined ? undefined : { home: ctx.roots.home, attempt: ctx.attempt };
}

/** One record: a running program's process group and the attempt that started it. */
interface AttemptRecord extends ProcessGroup {
  packageId: string;
  commandId: string;
  attemptId: string;
  program: string;
}

const recordsDir = 'run/attempts';

/** The file name prefix of a command's records: a hash, so no id can name a path. */
function keyOf(attempt: Pick<AttemptIdentity, 'packageId' | 'commandId'>): string {
  const hash = createHash('sha256').update(JSON.stringify([attempt.packageId, attempt.commandId]));
  return hash.digest('hex').slice(0, 32);
}

/**
 * The mark of one command's programs in one home: two homes on one machine (two users' runs, or
 * tests side by side) may hold commands of the same ids, and must never end each other's.
 */
function markOf(home: string, attempt: Pick<AttemptIdentity, 'packageId' | 'commandId'>): string {
  const hash = createHash('sha256').update(
    JSON.stringify([resolve(home), attempt.packageId, attempt.commandId]),
  );
  return hash.digest('hex').slice(0, 32);
}

/** The environment variable that marks the programs of one command's attempts. */
const markVariable = 'SPIN_ATTEMPT';

/**
 * What a program of `tracking`'s attempt gets in its environment (and passes to its children):
 * the mark by which a later attempt finds it even if it was never recorded.
 */
export function attemptEnvironment(tracking: AttemptTracking): Record<string, string> {
  return { [markVariable]: markOf(tracking.home, tracking.attempt) };
}

/** The process groups of live processes of this user whose environment carries `mark`. */
function markedGroups(mark: string): ProcessGroup[] {
  const needle = `\0${markVariable}=${mark}\0`;
  const groups = new Map<number, ProcessGroup>();
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const environ = `\0${readFileSync(`/proc/${name}/environ`, 'latin1')}`;
      if (!environ.includes(needle)) continue;
      const group = liveGroupOf(Number(name));
      if (group !== undefined) groups.set(group.pgid, group);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return [...groups.values()];
}

/** `$SPIN_HOME/run/attempts`, confined to the home (no link on the way); created when asked. */
async function directory(home: string, create: boolean): Promise<string | undefined> {
  let dir = await confinePath(home, recordsDir, 'relative');
  if (dir.kind === 'missing') {
    if (!create) return undefined;
    await mkdir(dir.path, { recursive: true, mode: 0o700 });
    dir = await confinePath(home, recordsDir, 'relative'); // check again what mkdir walked through
  }
  if (dir.kind !== 'directory') {
    throw new SpinError('action_failed', `${join(home, recordsDir)} is not a directory.`);
  }
  return dir.path;
}

/**
 * Records that `group` runs for `tracking`'s attempt, in a file of its own written whole (by
 * rename) under `$SPIN_HOME/run/attempts/`, and returns what removes the record once the group has ended.
 * A record left behind (the agent was killed) is how a later attempt of the same command finds
 * what to end first (see `endEarlierAttempts`).
 */
export async function recordGroup(
  tracking: AttemptTracking,
  group: ProcessGroup,
  program: string,
): Promise<() => Promise<void>> {
  const dir = await directory(tracking.home, true);
  if (dir === undefined) throw new SpinError('internal', 'Internal error: no attempts directory.');
  const path = join(dir, `${keyOf(tracking.attempt)}-${String(group.pgid)}.json`);
  const { packageId, commandId, attemptId } = tracking.attempt;
  const record: AttemptRecord = { packageId, commandId, attemptId, ...group, program };
  // Whole or absent (temp file, then rename), but not fsynced: a record speaks of processes of
  // this boot only, and a crash of the machine ends them all.
  const temp = tempPathFor(path);
  try {
    await writeFile(temp, `${JSON.stringify(record)}\n`, { flag: 'wx', mode: 0o600 });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw asSpinError(error, 'recording a running program');
  }
  return () => rm(path, { force: true });
}

function parseRecord(text: string): ProcessGroup | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { pgid, startTime, bootId } = value as Record<string, unknown>;
  if (typeof pgid !== 'number' || !Number.isInteger(pgid) || pgid <= 1) return undefined;
  if (typeof startTime !== 'number' || typeof bootId !== 'string') return undefined;
  return { pgid, startTime, bootId };
}

/**
 * Ends what earlier attempts of the command (`packageId`, `commandId`) left running on this node:
 * every process group recorded for it that is still the group recorded (a recycled pid is never
 * signalled, see `endGroup`) gets SIGTERM, then SIGKILL after `killAfterMs`; then its record is
 * removed. Returns how many groups were still running. Call before a new attempt runs, so one
 * command never runs twice at once. Throws when a group cannot be ended.
 */
export async function endEarlierAttempts(
  home: string,
  attempt: Pick<AttemptIdentity, 'packageId' | 'commandId'>,
  killAfterMs = defaultKillAfterMs,
): Promise<number> {
  // A program whose agent was killed between starting it and recording it has no record, but
  // carries the command's mark in its environment (`attemptEnvironment`): end those groups too.
  let ended = 0;
  for (const group of markedGroups(markOf(home, attempt))) {
    if ((await endGroup(group, killAfterMs)) !== 'gone') ended++;
  }
  const dir = await directory(home, false);
  if (dir === undefined) return ended;
  const prefix = `${keyOf(attempt)}-`;
  for (const name of await readdir(dir)) {
    if (!name.startsWith(prefix) || !name.endsWith('.json')) continue; // temp files never match
    const path = join(dir, name);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') continue; // its attempt ended meanwhile
      throw error;
    }
    const group = parseRecord(text);
    if (group !== undefined && (await endGroup(group, killAfterMs)) !== 'gone') ended++;
    await rm(path, { force: true });
  }
  return ended;
}
