import * as Flags from '@oclif/core/flags';
import { admissionFlags } from './admission-flags.js';
import { natsFlags } from './nats-flags.js';

/** The flags of `spin daemon run`, which `spin daemon start` passes on to it. */
export const daemonFlags = {
  'tcp-port': Flags.integer({
    description: 'also listen on 127.0.0.1:<port> (bearer token required)',
    min: 0,
    max: 65_535,
  }),
  agents: Flags.boolean({
    description:
      'run the built-in agents (storage, emulation, shell) in the daemon; --no-agents leaves the queues to `spin agent` processes',
    default: true,
    allowNo: true,
  }),
  'allow-shell': Flags.boolean({ description: 'let the shell agent run commands' }),
  ui: Flags.boolean({
    description: 'serve the web view on 127.0.0.1 (open it with `spin ui`)',
  }),
  'ui-port': Flags.integer({
    description: "the web view's port (default 7474; 0: any free port)",
    min: 0,
    max: 65_535,
    dependsOn: ['ui'],
  }),
  ...admissionFlags,
  ...natsFlags,
};
