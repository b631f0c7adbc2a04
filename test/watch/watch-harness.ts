import { spawn } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { WatchEvent } from '../../src/watch/watch-events.js';
import { repoRoot, testDir, type CliRun } from '../support/spin-cli.js';

export const fake = join(repoRoot, 'test/fixtures/fake-program.js');

/** A temp directory to watch, a separate temp SPIN_HOME, and a place for gates. */
export interface WatchDirs {
  root: string;
  dir: string;
  home: string;
  gates: string;
}

/**
 * Fresh directories for one test: `root/pkgs` (watched), `root/home`, `root/gates`; `root` is
 * removed when the test ends, after the watches (stopped in `afterEach`).
 */
export async function watchDirs(homeInside = false): Promise<WatchDirs> {
  const root = await testDir('spin-watch-');
  const dir = join(root, 'pkgs');
  const home = homeInside ? join(dir, 'home') : join(root, 'home');
  const gates = join(root, 'gates');
  await Promise.all([mkdir(dir, { recursive: true }), mkdir(gates)]);
  return { root, dir, home, gates };
}

/** A running `spin watch --output json`, with its events parsed as they arrive. */
export interface WatchRun {
  pid: number;
  events: WatchEvent[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** The number of events so far: pass it as `from` to wait only for what comes after. */
  mark(): number;
  /**
   * The first event from index `from` on that matches; rejects with every event seen when the
   * deadline passes or the process ends first.
   */
  waitFor(
    match: (e: WatchEvent) => boolean,
    options?: { from?: number; timeoutMs?: number; what?: string },
  ): Promise<WatchEvent>;
  signal(name: NodeJS.Signals): void;
  done: Promise<CliRun>;
  /** Sends SIGTERM and waits for the end. */
  stop(): Promise<CliRun>;
}

/** Starts `spin watch <dir> --output json` with `SPIN_HOME` = `home` and a short settle. */
export function startWatch(dirs: WatchDirs, ...args: string[]): WatchRun {
  const child = spawn(
    process.execPath,
    [
      join(repoRoot, 'bin/run.js'),
      'watch',
      dirs.dir,
      '--output',
      'json',
      '--settle',
      '50ms',
      ...args,
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', SPIN_HOME: dirs.home },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const events: WatchEvent[] = [];
  const waiters = new Set<() => void>();
  let stdout = '';
  let pending = '';
  let stderr = '';
  let ended = false;
  const wakeAll = (): void => {
    for (const wake of [...waiters]) wake();
  };
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('{')) events.push(JSON.parse(line) as WatchEvent);
    wakeAll();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const done = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      ended = true;
      wakeAll();
      resolve({ code, stdout, stderr });
    });
  });
  const waitFor: WatchRun['waitFor'] = (match, options = {}) => {
    const from = options.from ?? 0;
    const timeoutMs = options.timeoutMs ?? 20_000;
    return new Promise((resolve, reject) => {
      const failure = (why: string): Error =>
        new Error(
          `${why} before ${options.what ?? 'the event'}; events:\n${events
            .map((e) => JSON.stringify(e).slice(0, 300))
            .join('\n')}\nstderr:\n${stderr.slice(-2000)}`,
        );
      const timer = setTimeout(() => {
        waiters.delete(wake);
        reject(failure(`${String(timeoutMs)} ms passed`));
      }, timeoutMs);
      function wake(): void {
        const found = events.slice(from).find(match);
        if (found === undefined && !ended) return;
        waiters.delete(wake);
        clearTimeout(timer);
        if (found !== undefined) resolve(found);
        else reject(failure('the process ended'));
      }
      waiters.add(wake);
      wake();
    });
  };
  return {
    pid: child.pid ?? 0,
    events,
    stderr: () => stderr,
    mark: () => events.length,
    waitFor,
    signal: (name) => child.kill(name),
    done,
    stop: async () => {
      child.kill('SIGTERM');
      return done;
    },
  };
}

/** Matches an event of `type` (for `package`, when given). */
export function is<T extends WatchEvent['type']>(
  type: T,
  pkg?: string,
): (e: WatchEvent) => e is Extract<WatchEvent, { type: T }> {
  return (e): e is Extract<WatchEvent, { type: T }> =>
    e.type === type && (pkg === undefined || ('package' in e && e.package === pkg));
}

/** Saves like an editor that writes a temp file and renames it over the original. */
export async function renameSave(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp-${String(process.pid)}`;
  await writeFile(temp, text);
  await rename(temp, file);
}

/** A storage-only package: a volume and raw 1 GiB sparse images (on `node`, when given). */
export function storagePackage(
  name: string,
  images: string[],
  volume = name,
  node?: string,
): string {
  const on = node === undefined ? '' : `node: ${node}, `;
  const lines = [
    `package: ${name}`,
    'commands:',
    `  vol: { resource: storage, action: add_volume, ${on}params: { path: ${volume} } }`,
  ];
  images.forEach((image, i) => {
    lines.push(
      `  img${String(i)}: { resource: storage, action: create_image, ${on}needs: [vol], params: { volume: ${volume}, image: ${image}, image_size: 1 } }`,
    );
  });
  return `${lines.join('\n')}\n`;
}

/** A package whose `wait` command runs until `gate` exists. */
export function gatedPackage(name: string, gate: string, image = 'x.raw'): string {
  return `package: ${name}
commands:
  vol: { resource: storage, action: add_volume, params: { path: ${name} } }
  wait: { resource: shell, action: run, needs: [vol], params: { argv: [node, ${JSON.stringify(fake)}, --wait-file=${gate}] } }
  img: { resource: storage, action: create_image, needs: [vol], params: { volume: ${name}, image: ${image}, image_size: 1 } }
`;
}

/**
 * A way to start watches in a test file that stops every one after each test, whatever the test
 * did, so no watcher outlives its test.
 */
export function watchesEndingAfterEachTest(): (...args: Parameters<typeof startWatch>) => WatchRun {
  const running: WatchRun[] = [];
  afterEach(async () => {
    for (const run of running.splice(0)) await run.stop();
  });
  return (...args) => {
    const run = startWatch(...args);
    running.push(run);
    return run;
  };
}

/** Matches the end of an apply of `pkg` in which no command failed. */
export const applied =
  (pkg: string) =>
  (e: WatchEvent): boolean =>
    is('apply-done', pkg)(e) && e.summary.failed === 0;
