import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { SpinError } from '../core/errors.js';

/**
 * A process group that an agent started (its leader's pid is the group id), with what tells it
 * apart from a later process that reuses the pid: the leader's start time (clock ticks since
 * boot, field 22 of `/proc/<pid>/stat`) and the boot it ran in.
 */
export interface ProcessGroup {
  pgid: number;
  startTime: number;
  bootId: string;
}

/** What `/proc/<pid>/stat` says of one process. */
interface ProcStat {
  state: string;
  pgrp: number;
  startTime: number;
}

function parseStat(text: string): ProcStat | undefined {
  // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const pgrp = Number(fields[2]);
  const startTime = Number(fields[19]);
  const state = fields[0];
  if (state === undefined || !Number.isInteger(pgrp) || !Number.isFinite(startTime))
    return undefined;
  return { state, pgrp, startTime };
}

async function procStat(pid: number): Promise<ProcStat | undefined> {
  try {
    return parseStat(await readFile(`/proc/${String(pid)}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

const live = (stat: ProcStat): boolean => stat.state !== 'Z' && stat.state !== 'X';

let bootId: string | undefined;

/** This boot's id: a group recorded in another boot ended with it. */
function currentBootId(): string {
  bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return bootId;
}

/**
 * The group led by `pid`, a child just spawned into a group of its own. Read synchronously, right
 * after the spawn: the child cannot have been reaped yet (libuv reaps it on a later turn of the
 * event loop), so its `/proc` entry is there even if it already exited.
 */
export function groupOfChild(pid: number): ProcessGroup {
  const stat = parseStat(readFileSync(`/proc/${String(pid)}/stat`, 'utf8'));
  if (stat?.pgrp !== pid) {
    throw new SpinError('internal', `Internal error: process ${String(pid)} leads no group.`);
  }
  return { pgid: pid, startTime: stat.startTime, bootId: currentBootId() };
}

/**
 * The group of a live process found running (not one just spawned): its group id, and the
 * leader's start time while the leader lives, else the found process's own (the group's members
 * started no earlier than it matter). Undefined when the process is gone or a zombie.
 */
export function liveGroupOf(pid: number): ProcessGroup | undefined {
  const read = (of: number): ProcStat | undefined => {
    try {
      return parseStat(readFileSync(`/proc/${String(of)}/stat`, 'utf8'));
    } catch {
      return undefined;
    }
  };
  const stat = read(pid);
  if (stat === undefined || !live(stat) || stat.pgrp <= 1) return undefined;
  const leader = stat.pgrp === pid ? stat : read(stat.pgrp);
  const startTime = leader?.pgrp === stat.pgrp ? leader.startTime : stat.startTime;
  return { pgid: stat.pgrp, startTime, bootId: currentBootId() };
}

/**
 * Whether any live (not zombie) process of `group` remains. A recycled pid never counts: when the
 * leader is alive it must have the recorded start time; when it is gone, the kernel keeps its pid
 * from reuse while the group has members, and members started after the leader are looked for.
 */
async function groupRuns(group: ProcessGroup): Promise<boolean> {
  if (group.bootId !== currentBootId()) return false;
  try {
    process.kill(-group.pgid, 0);
  } catch {
    return false; // no process at all, not even a zombie, is in the group
  }
  const leader = await procStat(group.pgid);
  if (leader !== undefined) {
    // Another process under the leader's pid: the recorded group is gone (its pid was free).
    if (leader.startTime !== group.startTime) return false;
    if (leader.pgrp === group.pgid && live(leader)) return true;
  }
  let pids: string[];
  try {
    pids = await readdir('/proc');
  } catch {
    return false;
  }
  for (const name of pids) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await procStat(Number(name));
    if (stat?.pgrp === group.pgid && stat.startTime >= group.startTime && live(stat)) return true;
  }
  return false;
}

function signalGroup(group: ProcessGroup, signal: NodeJS.Signals): void {
  try {
    process.kill(-group.pgid, signal);
  } catch {
    // the group ended meanwhile
  }
}

/** Waits until no live process of `group` remains (true) or `timeoutMs` passes (false). */
async function groupEnds(group: ProcessGroup, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await groupRuns(group))) return true;
    if (Date.now() >= deadline) return false;
    // Processes outside our children give no event of their end: look again shortly.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** How long a process group is given after SIGTERM before SIGKILL, unless an agent says. */
export const defaultKillAfterMs = 2000;

/** How long a SIGKILLed group may take to be gone before it counts as unkillable. */
const killWaitMs = 5000;

/** How `endGroup` ended a group: it had already ended, or SIGTERM or SIGKILL ended it. */
export type GroupEnd = 'gone' | 'terminated' | 'killed';

/**
 * Ends every process of `group`: SIGTERM, then SIGKILL when any is left after `killAfterMs`, and
 * waits until none is left. Each signal goes out only while the group is still proven the one
 * recorded: same boot, and a leader with the recorded start time or, the leader gone, members
 * started after it; a recycled pid is never signalled. Never waits on pipes. Throws SpinError `action_failed` (retryable)
 * when a process outlives SIGKILL (stuck in the kernel), so no second run starts beside it.
 */
export async function endGroup(group: ProcessGroup, killAfterMs: number): Promise<GroupEnd> {
  if (!(await groupRuns(group))) return 'gone';
  signalGroup(group, 'SIGTERM');
  if (await groupEnds(group, killAfterMs)) return 'terminated';
  if (await groupRuns(group)) signalGroup(group, 'SIGKILL');
  if (await groupEnds(group, killWaitMs)) return 'killed';
  throw new SpinError(
    'action_failed',
    `Process group ${String(group.pgid)} survived SIGKILL; it is still running.`,
    { retryable: true, details: { pgid: group.pgid } },
  );
}
