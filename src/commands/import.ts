import * as Args from '@oclif/core/args';
import { packageFlags } from '../cli/flags.js';
import { loadOrThrow } from '../cli/load-or-report.js';
import { lockTimeoutMs, resolveHome, stateFlags } from '../cli/reconcile-flags.js';
import { lockWaitLine, recoveredLines } from '../cli/reconcile-lines.js';
import { documentOutput, documentOutputFlags } from '../cli/reconcile-flags.js';
import { SpinCommand } from '../cli/spin-command.js';
import { importCommands, type ImportOutcome } from '../reconcile/import.js';

export default class Import extends SpinCommand {
  static override summary = 'Take what exists already under a package, without changing it.';
  static override description =
    'Records commands of a package as applied when what they would make exists already and no package manages it (a volume made by hand, the VMs of a state that was lost), so that apply leaves it as it is and destroy undoes it. Apply refuses to take such things over silently. Name a command as <package>/<id>, or a package to import each of its commands whose result is there.';
  static override examples = [
    '<%= config.bin %> import vm.spin.yaml vm-demo/volume',
    '<%= config.bin %> import vm.spin.yaml vm-demo',
  ];
  static override strict = false;
  static override args = {
    path: Args.string({
      description: 'the package file (or directory) that defines them',
      required: true,
    }),
    addresses: Args.string({
      description: '<package>/<id> or <package>; repeatable',
      required: true,
    }),
  };
  static override flags = {
    ...documentOutputFlags(['text', 'json']),
    ...stateFlags,
    ...packageFlags,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Import);
    const [path, ...addresses] = argv.map(String);
    const { packages } = await loadOrThrow([path ?? ''], flags['max-bytes']);
    const outcomes = await importCommands({
      ...resolveHome(flags),
      packages,
      addresses,
      lockTimeoutMs: lockTimeoutMs(flags['lock-timeout']),
      emit: (event) => {
        if (event.type === 'lock-wait') this.logToStderr(lockWaitLine(event.holder));
        if (event.type === 'recovered')
          for (const line of recoveredLines(event.cancelled, event.recorded))
            this.logToStderr(line);
      },
    });
    if (documentOutput(flags) === 'json') {
      this.printDocument('import', { commands: outcomes });
      return;
    }
    for (const outcome of outcomes) this.log(describe(outcome));
    const imported = outcomes.filter((o) => o.result === 'imported').length;
    this.log(`Import complete: ${String(imported)} imported.`);
  }
}

function describe(outcome: ImportOutcome): string {
  const name = `${outcome.package}/${outcome.id}`;
  switch (outcome.result) {
    case 'imported': {
      const seen = Object.entries(outcome.observed ?? {})
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(', ');
      return `${name} imported${seen === '' ? '' : ` (${seen})`}`;
    }
    case 'absent':
      return `${name} not there: apply will create it`;
    case 'managed':
      return `${name} managed already`;
  }
}
