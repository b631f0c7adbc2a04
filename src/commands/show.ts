import * as Args from '@oclif/core/args';
import { documentOutput, documentOutputFlags } from '../cli/reconcile-flags.js';
import { printPlan } from '../cli/render-plan.js';
import { SpinCommand } from '../cli/spin-command.js';
import { readPlan } from '../plan/plan-document.js';

export default class Show extends SpinCommand {
  static override summary = 'Print a saved plan.';
  static override description =
    'Prints a plan saved by `spin plan --out FILE` as the terminal plan view, as JSON (the file itself, checked), or as Markdown for a pull-request comment. Reads only the file: no state, no lock.';
  static override examples = [
    '<%= config.bin %> show plan.json',
    '<%= config.bin %> show plan.json --output markdown > comment.md',
  ];
  static override args = {
    file: Args.string({ description: 'a plan saved by spin plan --out', required: true }),
  };
  static override flags = { ...documentOutputFlags(['text', 'json', 'markdown']) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Show);
    const doc = await readPlan(args.file);
    printPlan(doc, documentOutput(flags) as 'text' | 'json' | 'markdown', {
      out: (line) => {
        this.log(line);
      },
      err: (line) => {
        this.logToStderr(line);
      },
    });
  }
}
