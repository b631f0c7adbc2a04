import { existsSync, readFileSync, watch } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { processStartTime } from '../../core/process-identity.js';
import { abortedError } from '../abort.js';
import { errnoOf } from '../fs-util.js';

/** The pid in a qemu pid file, or undefined when there is none. */
function readPid(pidFile: string): number | undefined {
  // A stopped VM has no pid file: asked first, since a thrown ENOENT costs ten times the look.
  if (!existsSync(pidFile)) return undefined;
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * A qemu of spin's: its pid and its start time, so that a later process given the same pid is
 * never taken for it (nor signalled).
 */
export interface QemuProcess {
  pid: number;
  startTime: number;
}

/** Whether `qemu` still runs: its pid is live (not a zombie) and started when it did. */
export function stillRuns(qemu: QemuProcess): boolean {
  return processStartTime(qemu.pid) === qemu.startTime;
}

/**
 * The qemu of the VM whose pid file is `pidFile`, or undefined when none runs: the pid the file
 * names must be live, not a zombie, and have that exact pid file in its command line, all of one
 * process (its start time is the same before and after the command line is read). Synchronous:
 * a small file and /proc, which the kernel makes up in memory (a heartbeat counts VMs with it).
 */
export function findQemu(pidFile: string): QemuProcess | undefined {
  const pid = readPid(pidFile);
  if (pid === undefined) return undefined;
  const startTime = processStartTime(pid);
  if (startTime === undefined) return undefined;
  try {
    const args = readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8').split('\0');
    if (!args.some((a) => a.includes('qemu-system')) || !args.includes(pidFile)) return undefined;
  } catch {
    return undefined;
  }
  return processStartTime(pid) === startTime ? { pid, startTime } : undefined;
}

/** The first re-check of a wait that has no event to tell it; each later one waits twice as long. */
const firstCheckMs = 10;
/** The longest a wait goes without looking again: what it may learn late when no event comes. */
const slowestCheckMs = 1000;

/**
 * Resolves after `ms`, or as soon as `signal` aborts or `wake` settles, whichever is first: true
 * when `wake` ended it. It leaves no timer or listener behind.
 */
export function pause(ms: number, signal: AbortSignal, wake?: Promise<unknown>): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (woken: boolean): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', aborted);
      resolve(woken);
    };
    const aborted = (): void => {
      done(false);
    };
    const timer = setTimeout(aborted, ms);
    signal.addEventListener('abort', aborted, { once: true });
    const woken = (): void => {
      done(true);
    };
    void wake?.then(woken, woken);
  });
}

/**
 * Waits until `qemu` is gone, or `timeoutMs` passes (false). qemu runs detached, so no exit event
 * of the process itself reaches spin: `woken` stands for one (the QMP connection closing, the
 * `SHUTDOWN` event), and the process is looked at again when it fires. Without it, it is looked at
 * after 10 ms, then at doubling intervals of at most a second, so a long wait costs a few dozen
 * wake-ups, not one every few milliseconds.
 */
export async function waitForExit(
  qemu: QemuProcess,
  timeoutMs: number,
  signal: AbortSignal,
  woken?: Promise<unknown>,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = firstCheckMs;
  let wake = woken;
  for (;;) {
    if (!stillRuns(qemu)) return true;
    if (signal.aborted) throw abortedError(signal, 'Waiting for qemu to exit');
    const left = deadline - Date.now();
    if (left <= 0) return false;
    if (await pause(Math.min(delay, left), signal, wake)) {
      // qemu is on its way out: look again soon, without the event, which stays settled.
      wake = undefined;
      delay = firstCheckMs;
    } else delay = Math.min(delay * 2, slowestCheckMs);
  }
}

async function readTail(path: string, bytes: number): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - bytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The last `bytes` of the console log, for errors and `ready_when`. */
export function consoleTail(path: string, bytes = 4096): Promise<string> {
  return readTail(path, bytes);
}

/** Why `waitForConsole` ended. */
export type ConsoleWait = 'matched' | 'timeout' | 'exited';

/**
 * The end of a log that grows, kept in memory: `update` reads only what was appended since the
 * last call (one `fstat` when nothing was). A log that shrank (truncated by a new qemu) is read
 * afresh.
 */
class LogTail {
  #handle: FileHandle | undefined;
  #offset = 0;
  #text = '';
  #decoder = new StringDecoder('utf8');

  constructor(
    private readonly path: string,
    private readonly bytes: number,
  ) {}

  async update(): Promise<string> {
    if (this.#handle === undefined) {
      try {
        this.#handle = await open(this.path, 'r');
      } catch {
        return this.#text; // not there yet
      }
    }
    const { size } = await this.#handle.stat();
    if (size < this.#offset) this.#restart(0);
    if (size === this.#offset) return this.#text;
    if (size - this.#offset > this.bytes) this.#restart(size - this.bytes);
    const buffer = Buffer.alloc(size - this.#offset);
    const { bytesRead } = await this.#handle.read(buffer, 0, buffer.length, this.#offset);
    this.#offset += bytesRead;
    const text = this.#text + this.#decoder.write(buffer.subarray(0, bytesRead));
    this.#text = text.length > this.bytes ? text.slice(-this.bytes) : text;
    return this.#text;
  }

  #restart(offset: number): void {
    this.#offset = offset;
    this.#text = '';
    this.#decoder = new StringDecoder('utf8');
  }

  async close(): Promise<void> {
    await this.#handle?.close();
  }
}

/**
 * Waits until the console log matches `pattern` (tested on its last 256 KiB), `qemu` exits, or
 * `timeoutMs` passes. What the log gains is read when it changes (file change events); whether
 * qemu still runs is checked at doubling intervals of at most a second, which also reads the log
 * where change events are not delivered. A wait with nothing happening costs a wake-up a second.
 */
export async function waitForConsole(
  path: string,
  pattern: RegExp,
  options: { timeoutMs: number; signal: AbortSignal; qemu: QemuProcess },
): Promise<ConsoleWait> {
  const deadline = Date.now() + options.timeoutMs;
  const tail = new LogTail(path, 256 * 1024);
  // Counts change events, which may come while the log is being read.
  let changes = 0;
  let poke: (() => void) | undefined;
  let watcher: ReturnType<typeof watch> | undefined;
  try {
    watcher = watch(path, () => {
      changes++;
      poke?.();
    });
  } catch {
    watcher = undefined; // the re-checks below still find the match
  }
  let delay = firstCheckMs;
  try {
    for (;;) {
      const seen = changes;
      if (pattern.test(await tail.update())) return 'matched';
      if (options.signal.aborted) throw abortedError(options.signal, 'Waiting for the console');
      if (!stillRuns(options.qemu)) return 'exited';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      if (changes !== seen) continue; // written to while it was read
      const wake = new Promise<void>((resolve) => (poke = resolve));
      if (!(await pause(Math.min(delay, left), options.signal, wake)))
        delay = Math.min(delay * 2, slowestCheckMs);
      poke = undefined;
    }
  } finally {
    watcher?.close();
    await tail.close();
  }
}
