import { schemaParts } from '../action-spec.js';

/**
 * The `restart` block of `emulation.start`: what the supervisor of a VM does when its qemu ends
 * without being stopped by spin. Nomad's fields and defaults (see `defaults.restart`). Every
 * value the schema accepts is one the supervisor carries out (waits longer than a timer can
 * hold are waited in steps), so the bounds here are the only ones.
 */
export const restartSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'What to do when the VM ends without spin stopping it.',
  properties: {
    policy: {
      enum: ['no', 'on-failure', 'always'],
      description:
        'no: never restart; on-failure (default): restart unless the guest powered off; always: restart whatever ended it',
    },
    attempts: {
      type: 'integer',
      minimum: 0,
      maximum: 1000,
      description: 'restarts allowed within interval (default 2)',
    },
    interval: {
      ...schemaParts.duration,
      description: 'the window attempts are counted in (default 30m; 0: no limit)',
    },
    delay: { ...schemaParts.duration, description: 'first wait before a restart (default 15s)' },
    max_delay: {
      ...schemaParts.duration,
      description: 'the wait doubles after each restart in the window, up to this (default 5m)',
    },
    mode: {
      enum: ['fail', 'delay'],
      description:
        'once attempts are used up: fail (default) gives up; delay waits until the interval has passed, then restarts',
    },
  },
} as const;
