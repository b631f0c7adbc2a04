import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { documentOutput, documentOutputFlags } from '../cli/reconcile-flags.js';
import { SpinCommand } from '../cli/spin-command.js';
import { loadOrThrow } from '../cli/load-or-report.js';
import { renderGraph, type GraphFormat } from '../cli/render-graph.js';
import { packageFlags } from '../cli/flags.js';
import { topologicalOrder } from '../load/topological-order.js';

export default class Graph extends SpinCommand {
  static override summary = 'Draw the dependency graph of a package.';
  static override description =
    'Prints the commands of each package in run order, grouped by resource, as text, Mermaid (renders on GitHub) or Graphviz dot.';
  static override examples = [
    '<%= config.bin %> graph examples/vm.spin.yaml',
    '<%= config.bin %> graph examples/vm.spin.yaml --format mermaid > graph.md',
    '<%= config.bin %> graph examples/vm.spin.yaml --format dot | dot -Tsvg > graph.svg',
    '<%= config.bin %> graph examples/vm.spin.yaml --json',
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
    ...documentOutputFlags(['text', 'json']),
    ...packageFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Graph);
    const { packages } = await loadOrThrow([args.path], flags['max-bytes']);
    if (documentOutput(flags) === 'json') {
      this.printDocument('graph', {
        packages: packages.map((pkg) => ({
          name: pkg.name,
          file: pkg.file,
          order: topologicalOrder(pkg.commands).map((c) => c.id),
          nodes: pkg.commands.map(({ id, resource, action }) => ({ id, resource, action })),
          edges: pkg.commands.flatMap((c) => c.needs.map((need) => ({ from: need, to: c.id }))),
        })),
      });
      return;
    }
    this.log(
      packages
        .map((p) => renderGraph(p, flags.format as GraphFormat))
        .join('\n')
        .trimEnd(),
    );
  }
}
