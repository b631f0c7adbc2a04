import * as Args from '@oclif/core/args';
import { ExitCode } from '../core/exit-codes.js';
import { documentOutput, documentOutputFlags } from '../cli/reconcile-flags.js';
import { SpinCommand } from '../cli/spin-command.js';
import { diagnosticsReport } from '../cli/load-or-report.js';
import { packageFlags } from '../cli/flags.js';
import { loadPackages } from '../load/load-packages.js';

export default class Validate extends SpinCommand {
  static override summary = 'Check package files without running anything.';
  static override description =
    "Loads each *.spin.yaml (files, or every one below a directory), checks it against the schema, the actions' parameters and its dependency graph, and reports every problem with file:line:column. Exit 0 when valid, 2 when not.";
  static override examples = [
    '<%= config.bin %> validate vm.spin.yaml',
    '<%= config.bin %> validate packages/',
    '<%= config.bin %> validate a.spin.yaml b.spin.yaml --json',
  ];
  static override strict = false;
  static override args = {
    paths: Args.string({ description: 'package files or directories', required: true }),
  };
  static override flags = {
    ...documentOutputFlags(['text', 'json']),
    ...packageFlags,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Validate);
    const paths = argv.map(String);
    const result = await loadPackages(paths, { maxBytes: flags['max-bytes'] });
    const valid = result.diagnostics.length === 0 && result.packages.length > 0;
    if (documentOutput(flags) === 'json') {
      const packages = result.packages.map((p) => ({
        name: p.name,
        file: p.file,
        commands: p.commands.length,
      }));
      this.printDocument('validate', { valid, packages, diagnostics: result.diagnostics });
    } else if (result.diagnostics.length > 0) {
      this.logToStderr(diagnosticsReport(result.diagnostics, result.files.length));
    } else if (result.packages.length === 0) {
      this.logToStderr(`error: no *.spin.yaml files found in ${paths.join(', ')}`);
    } else {
      for (const p of result.packages)
        this.log(`ok  ${p.name} (${String(p.commands.length)} commands)  ${p.file}`);
    }
    if (!valid) await this.exitWith(ExitCode.invalidInput);
  }
}
