import { trackingOf } from '../attempt-record.js';
import { mkdirSync } from 'node:fs';
import { open, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { SpinError } from '../../core/errors.js';
import { absenceOf } from '../agent.js';
import type { ActionContext, Agent, AgentAction, Observation } from '../agent.js';
import type { ActionSpec } from '../action-spec.js';
import { confinePath, type ConfinedPath } from '../confined-path.js';
import { asSpinError, clearStaleTemps, errnoOf, tempPathFor } from '../fs-util.js';
import { flagParam, intParam, optionalStringParam, stringParam, type Params } from '../params.js';
import { builtinSpec } from '../registry.js';
import { maxImageGib } from './specs.js';
import {
  copySparse,
  gib,
  imageInfo,
  qemuImg,
  type ImageFormat,
  type ImageInfo,
} from './image-file.js';

/**
 * The storage agent (host-path): a volume is a directory under the images root, an image a file in
 * a volume. Every path goes through confinePath; images are made under a temporary name and
 * renamed into place, so a failure or abort never leaves a partial image. A writer killed outright
 * (kill -9) leaves its temporary file: every action on a volume but `observe` first removes the
 * leftovers of writers no longer alive (see clearStaleTemps), so they never block remove_volume.
 */

const specOf = (action: string): ActionSpec => builtinSpec('storage', action);

async function volumeDir(ctx: ActionContext, volume: string): Promise<ConfinedPath> {
  const dir = await confinePath(ctx.roots.images, volume, 'name');
  if (dir.kind !== 'directory') {
    throw new SpinError('not_found', `Volume '${volume}' does not exist.`, {
      details: { volume },
      suggestions: [`Add it first: storage add_volume { path: ${volume} }.`],
    });
  }
  await clearLeftovers(ctx, volume, dir);
  return dir;
}

/** Removes the temporary files dead writers left in a volume; returns the entries left. */
async function clearLeftovers(
  ctx: ActionContext,
  volume: string,
  dir: ConfinedPath,
): Promise<string[]> {
  const { removed, left } = await clearStaleTemps(dir.path);
  for (const name of removed) {
    ctx.progress(`removed ${volume}/${name}, left by an interrupted write`);
  }
  return left;
}

async function imagePath(ctx: ActionContext, volume: string, image: string): Promise<ConfinedPath> {
  await volumeDir(ctx, volume);
  return confinePath(ctx.roots.images, `${volume}/${image}`, 'relative');
}

function notAFile(what: string, path: ConfinedPath): SpinError {
  return new SpinError('already_exists', `'${what}' exists and is not an image file.`, {
    details: { kind: path.kind },
  });
}

async function observeVolume(params: Params, ctx: ActionContext): Promise<Observation> {
  const dir = await confinePath(ctx.roots.images, stringParam(params, 'path'), 'name');
  if (dir.kind !== 'directory') return { present: false, details: {} };
  return { present: true, details: { entries: (await readdir(dir.path)).length } };
}

async function observeImage(
  volume: string,
  image: string,
  ctx: ActionContext,
): Promise<Observation> {
  const dir = await confinePath(ctx.roots.images, volume, 'name');
  if (dir.kind !== 'directory') return { present: false, details: {} };
  const file = await confinePath(ctx.roots.images, `${volume}/${image}`, 'relative');
  if (file.kind !== 'file') return { present: false, details: {} };
  const info = await imageInfo(file.path, ctx.signal);
  return {
    present: true,
    details: { format: info.format, virtual_size: info.virtualSize, allocated: info.allocated },
  };
}

const observeImageParams = (params: Params, ctx: ActionContext): Promise<Observation> =>
  observeImage(stringParam(params, 'volume'), stringParam(params, 'image'), ctx);

const addVolume: AgentAction = {
  spec: specOf('add_volume'),
  async run(params, ctx) {
    const name = stringParam(params, 'path');
    const dir = await confinePath(ctx.roots.images, name, 'name');
    if (dir.kind === 'directory') {
      await clearLeftovers(ctx, name, dir);
      return { output: `volume ${name} exists` };
    }
    if (dir.kind !== 'missing') {
      throw new SpinError('already_exists', `'${name}' exists and is not a directory.`);
    }
    try {
      mkdirSync(dir.path, { mode: 0o755 }); // see confinePath: metadata calls do not queue
    } catch (error) {
      if (errnoOf(error) !== 'EEXIST') throw asSpinError(error, `creating volume ${name}`);
    }
    return { output: `volume ${name} created` };
  },
  observe: observeVolume,
  inverseParams: (params) => ({ path: params['path'] }),
};

const removeVolume: AgentAction = {
  spec: specOf('remove_volume'),
  async run(params, ctx) {
    const name = stringParam(params, 'path');
    const dir = await confinePath(ctx.roots.images, name, 'name');
    if (dir.kind === 'missing') return { output: `volume ${name} absent` };
    if (dir.kind !== 'directory')
      throw new SpinError('invalid_input', `'${name}' is not a volume.`);
    // Leftovers of interrupted writes are not the user's: they go, and do not make it non-empty.
    const entries = await clearLeftovers(ctx, name, dir);
    if (entries.length > 0 && !flagParam(params, 'force')) {
      throw new SpinError(
        'not_empty',
        `Volume '${name}' is not empty (${entries.length} entries).`,
        {
          details: { entries: entries.length },
          suggestions: ['Delete its images first, or set force: true to remove them too.'],
        },
      );
    }
    // rm does not follow symbolic links inside the volume: it removes the links themselves.
    if (entries.length > 0) await rm(dir.path, { recursive: true });
    else await rmdir(dir.path);
    return {
      output: `volume ${name} removed${entries.length > 0 ? ` with ${entries.length} entries` : ''}`,
    };
  },
  observe: absenceOf(observeVolume),
};

function imageFormatParam(params: Params): ImageFormat {
  const format = optionalStringParam(params, 'format') ?? 'raw';
  if (format !== 'raw' && format !== 'qcow2') {
    throw new SpinError('invalid_input', `Parameter 'format' must be raw or qcow2.`);
  }
  return format;
}

async function createRaw(temp: string, bytes: number): Promise<void> {
  const handle = await open(temp, 'wx', 0o644);
  try {
    await handle.truncate(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const createImage: AgentAction = {
  spec: specOf('create_image'),
  async run(params, ctx) {
    const volume = stringParam(params, 'volume');
    const image = stringParam(params, 'image');
    const sizeGib = intParam(params, 'image_size', 1, maxImageGib);
    const format = imageFormatParam(params);
    const bytes = sizeGib * gib;
    const file = await imagePath(ctx, volume, image);
    if (file.kind === 'file') {
      const info = await imageInfo(file.path, ctx.signal);
      if (info.format === format && info.virtualSize === bytes) {
        return { output: `image ${volume}/${image} exists (${format}, ${sizeGib} GiB)` };
      }
      // A larger image_size is a change made in place: the image grows, its data stays.
      if (info.format === format)
        return resizeTo({ volume, image, path: file.path, info, sizeGib }, ctx);
      throw new SpinError(
        'already_exists',
        `Image '${volume}/${image}' exists as ${info.format}, not ${format}: a format is not changed in place.`,
        {
          details: { format: info.format, virtual_size: info.virtualSize },
          suggestions: [
            'Give the new image another name, or delete_image first (its data is lost).',
          ],
        },
      );
    }
    if (file.kind !== 'missing') throw notAFile(`${volume}/${image}`, file);
    const temp = tempPathFor(file.path);
    try {
      if (format === 'raw') await createRaw(temp, bytes);
      else
        await qemuImg(
          ['create', '-q', '-f', 'qcow2', temp, String(bytes)],
          ctx.signal,
          trackingOf(ctx),
        );
      await rename(temp, file.path);
    } catch (error) {
      await rm(temp, { force: true });
      throw asSpinError(error, `creating image ${volume}/${image}`);
    }
    return { output: `image ${volume}/${image} created (${format}, ${sizeGib} GiB)` };
  },
  observe: observeImageParams,
  inverseParams: (params) => ({ volume: params['volume'], image: params['image'] }),
};

const deleteImage: AgentAction = {
  spec: specOf('delete_image'),
  async run(params, ctx) {
    const volume = stringParam(params, 'volume');
    const image = stringParam(params, 'image');
    const dir = await confinePath(ctx.roots.images, volume, 'name');
    if (dir.kind === 'missing') return { output: `image ${volume}/${image} absent` };
    const file = await imagePath(ctx, volume, image);
    if (file.kind === 'missing') return { output: `image ${volume}/${image} absent` };
    if (file.kind !== 'file') throw notAFile(`${volume}/${image}`, file);
    await rm(file.path);
    return { output: `image ${volume}/${image} deleted` };
  },
  observe: absenceOf(observeImageParams),
};

const copyImage: AgentAction = {
  spec: specOf('copy_image'),
  async run(params, ctx) {
    const [fromVolume, fromImage] = [
      stringParam(params, 'from_volume'),
      stringParam(params, 'from_image'),
    ];
    const [toVolume, toImage] = [stringParam(params, 'to_volume'), stringParam(params, 'to_image')];
    const [from, to] = [`${fromVolume}/${fromImage}`, `${toVolume}/${toImage}`];
    if (from === to) throw new SpinError('invalid_input', 'An image cannot be copied onto itself.');
    const source = await imagePath(ctx, fromVolume, fromImage);
    if (source.kind !== 'file') throw new SpinError('not_found', `Image '${from}' does not exist.`);
    const target = await imagePath(ctx, toVolume, toImage);
    if (target.kind === 'file') {
      // Idempotent: a finished copy is only ever renamed into place, so a target of the same
      // format and size is the result of an earlier run (comparing contents would cost a full read).
      const [a, b] = [
        await imageInfo(source.path, ctx.signal),
        await imageInfo(target.path, ctx.signal),
      ];
      if (a.format === b.format && a.virtualSize === b.virtualSize && source.size === target.size) {
        return { output: `image ${to} exists` };
      }
      throw new SpinError('already_exists', `Image '${to}' exists and differs from '${from}'.`, {
        suggestions: ['Delete it first with delete_image.'],
      });
    }
    if (target.kind !== 'missing') throw notAFile(to, target);
    const temp = tempPathFor(target.path);
    try {
      const bytes = await copySparse(source.path, temp, ctx.signal, ctx.progress, trackingOf(ctx));
      await rename(temp, target.path);
      return { output: `image ${from} copied to ${to} (${String(bytes)} bytes)` };
    } catch (error) {
      await rm(temp, { force: true });
      throw asSpinError(error, `copying ${from} to ${to}`);
    }
  },
  observe: (params, ctx) =>
    observeImage(stringParam(params, 'to_volume'), stringParam(params, 'to_image'), ctx),
  inverseParams: (params) => ({ volume: params['to_volume'], image: params['to_image'] }),
};

const resizeImage: AgentAction = {
  spec: specOf('resize_image'),
  async run(params, ctx) {
    const volume = stringParam(params, 'volume');
    const image = stringParam(params, 'image');
    const sizeGib = intParam(params, 'image_size', 1, maxImageGib);
    const file = await imagePath(ctx, volume, image);
    if (file.kind !== 'file')
      throw new SpinError('not_found', `Image '${volume}/${image}' does not exist.`);
    const info = await imageInfo(file.path, ctx.signal);
    const force = flagParam(params, 'force');
    return resizeTo({ volume, image, path: file.path, info, sizeGib }, ctx, force);
  },
  observe: observeImageParams,
};

/**
 * Resizes an image to `sizeGib` with qemu-img: growing always, shrinking only with `force`
 * (a shrink loses what lies past the new end).
 */
async function resizeTo(
  target: { volume: string; image: string; path: string; info: ImageInfo; sizeGib: number },
  ctx: ActionContext,
  force = false,
): Promise<{ output: string }> {
  const { volume, image, path, info, sizeGib } = target;
  const bytes = sizeGib * gib;
  if (info.virtualSize === bytes) return { output: `image ${volume}/${image} is ${sizeGib} GiB` };
  const shrink = bytes < info.virtualSize;
  if (shrink && !force) {
    throw new SpinError(
      'invalid_input',
      `Shrinking '${volume}/${image}' to ${sizeGib} GiB would lose data.`,
      {
        details: { virtual_size: info.virtualSize, requested: bytes },
        suggestions: ['Shrink it with resize_image and force: true, or delete_image first.'],
      },
    );
  }
  const args = ['resize', '-q', '-f', info.format, ...(shrink ? ['--shrink'] : []), path];
  await qemuImg([...args, String(bytes)], ctx.signal, trackingOf(ctx));
  return { output: `image ${volume}/${image} ${shrink ? 'shrunk' : 'grown'} to ${sizeGib} GiB` };
}

/** The storage agent, with every action of storage/specs.ts implemented. */
export function storageAgent(): Agent {
  const actions = [addVolume, removeVolume, createImage, deleteImage, copyImage, resizeImage];
  return { resource: 'storage', actions: new Map(actions.map((a) => [a.spec.action, a])) };
}
