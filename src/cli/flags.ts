import * as Flags from '@oclif/core/flags';

/** Flags shared by the commands that read packages. */
export const packageFlags = {
  'max-bytes': Flags.integer({
    description: 'largest package file accepted, in bytes',
    default: 5 * 1024 * 1024,
    min: 1,
  }),
};
