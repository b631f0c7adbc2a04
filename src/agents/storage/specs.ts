import { defineAction, documented, schemaParts } from '../action-spec.js';

/**
 * The storage agent (host-path): a volume is a directory under `$SPIN_HOME/images`, an image is
 * a file in a volume. Sizes are whole GiB.
 */
const resource = 'storage';
const { name, force: forceFlag } = schemaParts;
/** The largest image, in GiB: the agent refuses more, so the schema does too. */
export const maxImageGib = 65_536;
const imageSize = documented(
  { type: 'integer', minimum: 1, maximum: maxImageGib },
  'Size in GiB, 1 to 65536.',
  [1, 10, 20],
);
const volumeName = documented(name, 'A volume: a directory under $SPIN_HOME/images.', ['data']);
const imageName = documented(name, 'An image file in the volume.', ['disk.raw', 'disk.qcow2']);
const force = (what: string): typeof forceFlag & { description: string } =>
  documented(forceFlag, what);

/** A param as text, for a claim key (the schema has made it a string already). */
const text = (value: unknown): string => String(value);

/** Undoing an image deletes what is in it. */
const imageHoldsData = (): boolean => true;

export const storageSpecs = [
  defineAction({
    resource,
    action: 'add_volume',
    description: 'Create a volume (a directory under the images root).',
    properties: { path: volumeName },
    required: ['path'],
    inverse: 'remove_volume',
    claims: (p) => [`volume ${text(p['path'])}`],
    holdsData: (observed) => observed['entries'] !== 0,
  }),
  defineAction({
    resource,
    action: 'remove_volume',
    description: 'Remove a volume; refuses a non-empty one unless force is set.',
    properties: {
      path: volumeName,
      force: force(
        'Remove the volume with everything in it (default false: refuse a non-empty one).',
      ),
    },
    required: ['path'],
  }),
  defineAction({
    resource,
    action: 'create_image',
    description: 'Create a disk image of image_size GiB: raw (sparse) or qcow2.',
    properties: {
      volume: volumeName,
      image: imageName,
      image_size: imageSize,
      format: documented(
        { enum: ['raw', 'qcow2'], default: 'raw' },
        'raw: a sparse file; qcow2: copy-on-write, made by qemu-img.',
      ),
    },
    required: ['volume', 'image', 'image_size'],
    inverse: 'delete_image',
    claims: (p) => [`image ${text(p['volume'])}/${text(p['image'])}`],
    // A larger image_size grows the image; a smaller one would cut off what is in it.
    changesInPlace: ['image_size'],
    cannotChangeInPlace: (before, after) => {
      const [was, is] = [Number(before['image_size']), Number(after['image_size'])];
      return is < was
        ? `params.image_size shrinks from ${String(was)} to ${String(is)} GiB`
        : undefined;
    },
    holdsData: imageHoldsData,
  }),
  defineAction({
    resource,
    action: 'delete_image',
    description: 'Delete a disk image.',
    properties: { volume: volumeName, image: imageName },
    required: ['volume', 'image'],
  }),
  defineAction({
    resource,
    action: 'copy_image',
    description: 'Copy an image, through a temporary file, so no partial copy is ever left.',
    properties: {
      from_volume: documented(name, 'The volume of the image to copy.', ['base']),
      from_image: documented(name, 'The image to copy.', ['debian.qcow2']),
      to_volume: documented(name, 'The volume of the copy.', ['data']),
      to_image: documented(name, 'The copy: made under a temporary name, renamed when whole.', [
        'disk.qcow2',
      ]),
    },
    required: ['from_volume', 'from_image', 'to_volume', 'to_image'],
    inverse: 'delete_image',
    claims: (p) => [`image ${text(p['to_volume'])}/${text(p['to_image'])}`],
    holdsData: imageHoldsData,
  }),
  defineAction({
    resource,
    action: 'resize_image',
    description: 'Resize an image to image_size GiB; shrinking is refused unless force is set.',
    properties: {
      volume: volumeName,
      image: imageName,
      image_size: imageSize,
      force: force('Allow shrinking, which cuts off what is past the new size (default false).'),
    },
    required: ['volume', 'image', 'image_size'],
  }),
];
