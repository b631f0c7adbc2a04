import { defineAction, documented, schemaParts } from '../action-spec.js';

/**
 * The shell agent: runs an argv without a shell. Refused unless the broker was started with
 * shell commands allowed.
 */
export const shellSpecs = [
  defineAction({
    resource: 'shell',
    action: 'run',
    description: 'Run a program (argv, no shell) in a directory under $SPIN_HOME/work.',
    properties: {
      argv: documented(
        {
          type: 'array',
          minItems: 1,
          maxItems: 256,
          items: { type: 'string', maxLength: 4096, pattern: '^[^\\u0000]*$' },
        },
        'The program and its arguments, run as they are: no shell parses them.',
        [['make', 'install']],
      ),
      cwd: documented(schemaParts.relativePath, 'The directory to run in, under $SPIN_HOME/work.', [
        'build',
      ]),
      env: documented(
        {
          type: 'object',
          maxProperties: 64,
          propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' },
          additionalProperties: { type: 'string', maxLength: 4096, pattern: '^[^\\u0000]*$' },
        },
        'Environment variables to set.',
      ),
    },
    required: ['argv'],
  }),
];
