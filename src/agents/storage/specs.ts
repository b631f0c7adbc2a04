import { defineAction, schemaParts } from '../action-spec.js';

/**
 * The storage agent (host-path): a volume is a directory under `$SPIN_HOME/images`, an image is
 * a file in a volume. Sizes are whole GiB.
 */
const resource = 'storage';
const { name, force } = schemaParts;
/** The largest image, in GiB: the agent refuses more, so the schema does too. */
export const maxImageGib = 65_536;
const imageSize = { type: 'integer', minimum: 1, maximum: maxImageGib };

/** A param as text, for a claim key (the schema has made it a string already). */
const text = (value: unknown): string => String(value);

/** Undoing an image deletes what is in it. */
const imageHoldsData = (): boolean => true;

export const storageSpecs = [
  defineAction({
    resource,
    action: 'add_volume',
    description: 'Create a volume (a directory under the images root).',
    properties: { path: name },
    required: ['path'],
    inverse: 'remove_volume',
    claims: (p) => [`volume ${text(p['path'])}`],
    holdsData: (observed) => observed['entries'] !== 0,
  }),
  defineAction({
    resource,
    action: 'remove_volume',
    description: 'Remove a volume; refuses a non-empty one unless force is set.',
    properties: { path: name, force },
    required: ['path'],
  }),
  defineAction({
    resource,
    action: 'create_image',
    description: 'Create a disk image of image_size GiB: raw (sparse) or qcow2.',
    properties: {
      volume: name,
      image: name,
      image_size: imageSize,
      format: { enum: ['raw', 'qcow2'] },
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
    properties: { volume: name, image: name },
    required: ['volume', 'image'],
  }),
  defineAction({
    resource,
    action: 'copy_image',
    description: 'Copy an image, through a temporary file, so no partial copy is ever left.',
    properties: { from_volume: name, from_image: name, to_volume: name, to_image: name },
    required: ['from_volume', 'from_image', 'to_volume', 'to_image'],
    inverse: 'delete_image',
    claims: (p) => [`image ${text(p['to_volume'])}/${text(p['to_image'])}`],
    holdsData: imageHoldsData,
  }),
  defineAction({
    resource,
    action: 'resize_image',
    description: 'Resize an image to image_size GiB; shrinking is refused unless force is set.',
    properties: { volume: name, image: name, image_size: imageSize, force },
    required: ['volume', 'image', 'image_size'],
  }),
];
