import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { SpinError } from '../core/errors.js';
import { logChunkText, replacedNotice, sinceOf } from '../cli/render-logs.js';
import {
  documentOutput,
  documentOutputFlags,
  interruptSignal,
  resolveHome,
  stateFlags,
} from '../cli/reconcile-flags.js';
import { outputFormatVersion } from '../core/output-schemas.js';
import { SpinCommand } from '../cli/spin-command.js';
import { logSource, readLog, type LogSource } from '../reconcile/command-logs.js';
import { followLog } from '../reconcile/follow-log.js';

export default class Logs extends SpinCommand {
  static override summary = "Show a command's output, or a VM's serial console.";
  static override description =
    "Prints what the last attempt of a command said: its programs' stdout and stderr, its agent's progress, how it ended. For an emulation.start command, or with --vm, the VM's serial console instead (its current boot). Each command's last 10 attempts are kept under $SPIN_HOME/logs, up to 1 MiB each (the latest output). With --follow, goes on printing what is written until Ctrl-C: the next attempts of a command, a console across the VM's restarts. Unknown packages, commands, attempts and VMs exit 2.";
  static override examples = [
    '<%= config.bin %> logs failing/bad',
    '<%= config.bin %> logs failing/bad --attempt 1',
    '<%= config.bin %> logs vm-demo/start -f',
    '<%= config.bin %> logs --vm 1 --tail 20',
    '<%= config.bin %> logs failing/bad --since 10m --output json',
  ];
  static override args = {
    target: Args.string({ description: 'package/command' }),
  };
  static override flags = {
    vm: Flags.string({ description: "a VM's serial console, by its id" }),
    attempt: Flags.integer({
      description: "that attempt (for a start command: the start's own log instead of the console)",
      min: 1,
    }),
    boot: Flags.integer({
      description: 'a console of that many boots back (1: the one before)',
      min: 0,
    }),
    tail: Flags.integer({ char: 'n', description: 'only the last N lines', min: 0 }),
    since: Flags.string({ description: 'only what was written since: 10m, 2h, or a time' }),
    follow: Flags.boolean({ char: 'f', description: 'go on printing what is written' }),
    ...documentOutputFlags(['text', 'json']),
    state: stateFlags.state,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Logs);
    const target = args.target === undefined ? undefined : targetOf(args.target);
    if ((target === undefined) === (flags.vm === undefined)) {
      throw new SpinError('usage', 'name a command (package/command) or a VM (--vm <id>)');
    }
    if (flags.vm !== undefined && flags.attempt !== undefined) {
      throw new SpinError('usage', '--attempt goes with a command, not with --vm');
    }
    const source = await logSource({
      ...resolveHome(flags),
      ...(target === undefined ? {} : { target }),
      ...(flags.vm === undefined ? {} : { vm: flags.vm }),
      console: flags.attempt === undefined,
    });
    if (flags.boot !== undefined && source.kind !== 'console') {
      throw new SpinError('usage', '--boot goes with a console: a start command or --vm');
    }
    const selection = {
      ...(flags.attempt === undefined ? {} : { attempt: flags.attempt }),
      ...(flags.boot === undefined ? {} : { boot: flags.boot }),
      ...(flags.since === undefined ? {} : { since: sinceOf(flags.since, Date.now()) }),
      ...(flags.tail === undefined ? {} : { tail: flags.tail }),
    };
    // JSON: one `logs` document, or with --follow one `log-chunk` document per line.
    const json = documentOutput(flags) === 'json';
    if (!flags.follow) {
      const read = readLog(source, selection);
      if (json) this.printDocument('logs', { ...describe(source), ...read });
      else {
        if (read.quiet !== undefined) this.logToStderr(read.quiet);
        for (const chunk of read.chunks) process.stdout.write(logChunkText(chunk));
      }
      return;
    }
    // Ctrl-C ends the follow, and so does a reader that went away (`| head`): as `tail -f`.
    const interrupt = interruptSignal();
    const stop = new AbortController();
    const end = (): void => {
      stop.abort();
    };
    interrupt.signal.addEventListener('abort', end);
    process.stdout.on('error', end);
    try {
      for await (const chunk of followLog(source, selection, stop.signal)) {
        const notice = replacedNotice(chunk);
        if (json) {
          const line = { format_version: outputFormatVersion, kind: 'log-chunk', chunk };
          process.stdout.write(`${JSON.stringify(line)}\n`);
        } else {
          if (notice !== undefined) process.stderr.write(`${notice}\n`);
          process.stdout.write(logChunkText(chunk));
        }
      }
    } finally {
      process.stdout.off('error', end);
      interrupt.dispose();
    }
  }
}

/** `package/command` as its two names; anything else is a usage error. */
function targetOf(value: string): { package: string; command: string } {
  const slash = value.indexOf('/');
  if (slash <= 0 || slash === value.length - 1) {
    throw new SpinError('usage', `'${value}' is not package/command (e.g. vm-demo/start)`);
  }
  return { package: value.slice(0, slash), command: value.slice(slash + 1) };
}

function describe(source: LogSource): Record<string, unknown> {
  return source.kind === 'console'
    ? { source: 'console', vm: source.vm, package: source.package, command: source.command }
    : { source: 'attempts', package: source.package, command: source.command };
}
