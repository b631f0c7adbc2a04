import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { SpinCommand } from '../cli/spin-command.js';
import { loadOrThrow } from '../cli/load-or-report.js';
import { renderGraph, type GraphFormat } from '../cli/render-graph.js';
import { packageFlags } from '../cli/flags.js';

export default class Graph extends SpinCommand {
  static override summary = 'Draw the dependency graph of a package.';
  static override description =
    'Prints the commands of each package in run order, grouped by resource, as text, Mermaid (renders on GitHub) or Graphviz dot.';
  static override examples = [
    '<%= config.bin %> graph examples/vm.spin.yaml',
    '<%= config.bin %> graph examples/vm.spin.yaml --format mermaid > graph.md',
    '<%= config.bin %> graph examples/vm.spin.yaml --format dot | dot -Tsvg > graph.svg',
  ];
  static override args = {
    path: Args.string({ description: 'a package file or directory', required: true }),
  };
  static override flags = {
    format: Flags.string({
      char: 'f',
      options: ['text', 'mermaid', 'dot'],
      default: 'text',
      description: 'output format',
    }),
    ...packageFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Graph);
    const { packages } = await loadOrThrow([args.path], flags['max-bytes']);
    this.log(
      packages
        .map((p) => renderGraph(p, flags.format as GraphFormat))
        .join('\n')
        .trimEnd(),
    );
  }
}
