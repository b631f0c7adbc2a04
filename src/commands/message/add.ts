import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { SpinCommand } from '../../cli/spin-command.js';
import { durationToMs } from '../../core/duration.js';
import { SpinError } from '../../core/errors.js';
import { defaults } from '../../core/defaults.js';
import { openBroker } from '../../daemon/open-broker.js';
import { parseParamAssignments } from '../../cli/param-assignments.js';

/** `spin message add`: adds one command to a staged package and prints its id. */
export default class MessageAdd extends SpinCommand {
  static override description =
    "Add a command to a package and print its id. Parameters are key=value, typed by the action's parameter schema (JSON for object and array parameters).";
  static override examples = [
    '<%= config.bin %> message add p-1a2b storage add_volume path=test',
    '<%= config.bin %> message add p-1a2b storage create_image volume=test image=disk.raw image_size=1 --needs c1',
    `<%= config.bin %> message add p-1a2b emulation write_config id=1 'vm={"name":"demo","cpus":1,"memory":256,"images":[]}'`,
  ];
  static override strict = false;
  static override args = {
    package: Args.string({ description: 'the package id', required: true }),
    resource: Args.string({ description: 'the agent: storage, emulation, shell', required: true }),
    action: Args.string({ description: 'the action, e.g. add_volume', required: true }),
  };
  static override flags = {
    needs: Flags.string({
      description: 'ids of commands that must succeed first, comma-separated',
    }),
    id: Flags.string({ description: 'the command id (default: c<n>)' }),
    node: Flags.string({
      description: 'the node whose queue runs it',
      default: defaults.command.node,
    }),
    timeout: Flags.string({
      description: 'how long one attempt may take (e.g. 2m; default 10m)',
    }),
    retries: Flags.integer({
      description: 'attempts after a failed one',
      default: defaults.command.retries,
      min: 0,
      max: 100,
    }),
  };

  async run(): Promise<void> {
    const { args, flags, argv } = await this.parse(MessageAdd);
    const timeoutMs =
      flags.timeout === undefined ? defaults.command.timeoutMs : durationToMs(flags.timeout);
    if (timeoutMs === undefined)
      throw new SpinError('usage', `--timeout ${flags.timeout} is not a duration`);
    const params = parseParamAssignments(args.resource, args.action, (argv as string[]).slice(3));
    const needs = (flags.needs ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const broker = await openBroker({ embedded: 'client' });
    try {
      // A need must name a command added before: one added later could never be waited for,
      // and the package could never be enqueued.
      const known = new Set((await broker.status(args.package)).commands.map((c) => c.id));
      const unknown = needs.filter((need) => !known.has(need));
      if (unknown.length > 0) {
        throw new SpinError(
          'invalid_input',
          `--needs names ${unknown.map((n) => `'${n}'`).join(', ')}, not a command of package ${args.package}`,
          {
            suggestions: [
              known.size > 0
                ? `commands of the package so far: ${[...known].join(', ')}`
                : 'the package has no commands yet: add the command it needs first',
            ],
          },
        );
      }
      const [id] = await broker.addCommands(args.package, [
        {
          ...(flags.id === undefined ? {} : { id: flags.id }),
          resource: args.resource,
          action: args.action,
          params,
          needs,
          node: flags.node,
          timeoutMs,
          retries: flags.retries,
        },
      ]);
      this.log(id ?? '');
    } finally {
      await broker.close();
    }
  }
}
