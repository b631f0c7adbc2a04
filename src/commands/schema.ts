import { SpinCommand } from '../cli/spin-command.js';
import { editorSchema } from '../load/package-schema.js';

export default class Schema extends SpinCommand {
  static override summary = 'Print the JSON Schema of package files.';
  static override description =
    'The schema editors use to complete and check *.spin.yaml files (JSON Schema draft 2020-12, every action with its params), the same as schemas/package.schema.json. Write it beside your packages for an editor that works offline or a CI job.';
  static override examples = ['<%= config.bin %> schema > package.schema.json'];

  async run(): Promise<void> {
    await this.parse(Schema);
    this.log(JSON.stringify(editorSchema(), null, 2));
  }
}
