import { positiveDurationPattern } from '../../core/duration.js';
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

/** A period: a duration above zero. */
const period = {
  type: ['string', 'integer'],
  pattern: positiveDurationPattern,
  minimum: 1,
  maximum: 86_400,
} as const;

const tcpCheck = {
  type: 'integer',
  minimum: 1024,
  maximum: 65_535,
  description:
    'a tcp host port the VM forwards: healthy when a connection to it on 127.0.0.1 brings data (a banner) within timeout',
} as const;

const consoleCheck = {
  type: 'string',
  minLength: 1,
  maxLength: 256,
  description:
    'a regular expression: healthy when what the console gained since the last check matches it',
} as const;

/**
 * The `health` block of `emulation.start`: checks the supervisor runs while the VM runs; a VM
 * that fails `failures` of them in a row is ended and restarted under its `restart` policy (as
 * a failure: cause `unhealthy`).
 */
export const healthSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Checks that restart the VM (under its restart policy) when it stops answering.',
  properties: {
    tcp: tcpCheck,
    console: consoleCheck,
    interval: { ...period, description: 'time between checks (default 10s)' },
    timeout: { ...period, description: 'how long a tcp check waits (default 2s)' },
    failures: {
      type: 'integer',
      minimum: 1,
      maximum: 100,
      description: 'failed checks in a row that make the VM unhealthy (default 3)',
    },
    grace: {
      ...schemaParts.duration,
      description: 'time after a start before checks begin (default 0)',
    },
  },
  anyOf: [
    // One of the two checks at least (the properties are declared again for ajv's strict mode).
    { type: 'object', properties: { tcp: true }, required: ['tcp'] },
    { type: 'object', properties: { console: true }, required: ['console'] },
  ],
} as const;
