import { open } from 'node:fs/promises';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { SpinError } from '../../core/errors.js';
import { abortedError, throwIfAborted } from '../abort.js';
import type { AttemptTracking } from '../attempt-record.js';
import { runCollected } from '../run-program.js';

/** The disk image formats spin makes and reads. */
export type ImageFormat = 'raw' | 'qcow2';

/** Bytes in one GiB: image sizes in packages are whole GiB. */
export const gib = 1024 ** 3;

const qcow2Magic = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/**
 * The format of an image, from its first bytes rather than qemu's probing: a raw disk whose guest
 * wrote a qcow2 header would otherwise be opened as qcow2 with a backing file of the guest's
 * choosing. Callers that then read a qcow2 also refuse backing files (see `virtualSize`).
 */
export function detectFormat(path: string): Promise<ImageFormat> {
  return Promise.resolve(readHead(path).format);
}

/**
 * The format and the stats of an image, through one descriptor. Synchronous, like the metadata
 * calls of confinePath: four bytes and an fstat cost less than a trip through the thread pool.
 */
function readHead(path: string): { format: ImageFormat; stats: Stats } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const head = Buffer.alloc(4);
    const bytesRead = readSync(fd, head, 0, 4, 0);
    const format = bytesRead === 4 && head.equals(qcow2Magic) ? 'qcow2' : 'raw';
    return { format, stats: fstatSync(fd) };
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs `qemu-img` with `args` (an argv, never a shell) in a process group of its own, honouring
 * `signal`: when it fires, the group is ended (SIGTERM, then SIGKILL) and the call fails with
 * `timeout` or `cancelled`. A full disk becomes SpinError `no_space`, any other failure
 * `action_failed` with qemu-img's message.
 */
export async function qemuImg(
  args: string[],
  signal: AbortSignal,
  tracking?: AttemptTracking,
): Promise<string> {
  throwIfAborted(signal, 'qemu-img');
  const run = await runCollected('qemu-img', args, {
    signal,
    ...(tracking === undefined ? {} : { tracking }),
  });
  if (run.end.kind === 'aborted') throw abortedError(signal, 'qemu-img');
  if (run.end.kind === 'not_started') {
    throw new SpinError('action_failed', `qemu-img did not start: ${run.end.message}`);
  }
  if (run.end.exitCode !== 0) {
    const text = run.stderr.trim() || `qemu-img ${exitText(run.end)}`;
    if (/No space left on device/i.test(text)) {
      throw new SpinError('no_space', `No space left on the device: ${text}`, { retryable: true });
    }
    throw new SpinError('action_failed', `qemu-img ${args[0] ?? ''} failed: ${text}`, {
      details: { exitCode: run.end.exitCode },
    });
  }
  return run.stdout;
}

function exitText(end: { exitCode: number | null; signal: string | null }): string {
  return end.exitCode !== null
    ? `exited with code ${String(end.exitCode)}`
    : `was killed by ${end.signal ?? 'a signal'}`;
}

/** What spin knows of an existing image. */
export interface ImageInfo {
  format: ImageFormat;
  /** The size the guest sees, in bytes. */
  virtualSize: number;
  /** Bytes allocated on the host file system. */
  allocated: number;
}

/**
 * Format and sizes of the image at `path`. A qcow2 image with a backing file is refused: spin never
 * makes one, and following it could read files outside the images root.
 */
export async function imageInfo(path: string, signal: AbortSignal): Promise<ImageInfo> {
  const { format, stats } = readHead(path);
  if (format === 'raw') return { format, virtualSize: stats.size, allocated: stats.blocks * 512 };
  const json: unknown = JSON.parse(
    // -U: read the header even while a running VM holds the image's write lock.
    await qemuImg(['info', '-U', '-f', 'qcow2', '--output=json', path], signal),
  );
  const info = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  if (info['backing-filename'] !== undefined) {
    throw new SpinError(
      'invalid_input',
      'The image has a backing file; spin does not use such images.',
      {
        details: { path },
      },
    );
  }
  const virtualSize = info['virtual-size'];
  if (typeof virtualSize !== 'number')
    throw new SpinError('action_failed', 'qemu-img info gave no size.');
  return { format, virtualSize, allocated: stats.blocks * 512 };
}

/**
 * Copies `from` into the new file `to` byte for byte, keeping holes so a sparse image stays
 * sparse, and fsyncs it. `cp --sparse=always` finds the data with SEEK_DATA/SEEK_HOLE (and
 * shares blocks where the filesystem can reflink), so a 2 GiB image with 1 MiB written copies
 * in milliseconds rather than reading 2 GiB. Format-agnostic (no qemu probing); `-P` never
 * follows a link. Honours `signal` as `qemuImg` does; on any failure the caller removes `to`.
 */
export async function copySparse(
  from: string,
  to: string,
  signal: AbortSignal,
  progress: (line: string) => void,
  tracking?: AttemptTracking,
): Promise<number> {
  throwIfAborted(signal, 'The copy');
  progress(`copying ${from}`);
  const run = await runCollected(
    'cp',
    ['-P', '--sparse=always', '--reflink=auto', '--no-preserve=all', '--', from, to],
    { signal, ...(tracking === undefined ? {} : { tracking }) },
  );
  if (run.end.kind === 'aborted') throw abortedError(signal, 'The copy');
  if (run.end.kind === 'not_started') {
    throw new SpinError('action_failed', `cp did not start: ${run.end.message}`);
  }
  if (run.end.exitCode !== 0) {
    const text = run.stderr.trim() || `cp ${exitText(run.end)}`;
    if (/No space left on device/i.test(text)) {
      throw new SpinError('no_space', `No space left on the device: ${text}`, { retryable: true });
    }
    throw new SpinError('action_failed', `copying the image failed: ${text}`);
  }
  const target = await open(to, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await target.sync();
    return (await target.stat()).size;
  } finally {
    await target.close();
  }
}
