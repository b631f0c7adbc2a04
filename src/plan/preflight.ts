import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { agentRoots } from '../agents/agent-roots.js';
import { confinePath } from '../agents/confined-path.js';
import { defaults } from '../core/defaults.js';
import type { AdmissionPolicy, ReportedBudgets } from '../core/vm-budget.js';
import { messageOf, SpinError } from '../core/errors.js';
import type { CommandSpec } from '../core/package.js';
import { commandPosition } from '../load/load-package-file.js';
import { fitWarnings } from './fit-warnings.js';
import type { PackagePlan } from './plan.js';
import {
  plannedCommands,
  plannedStarts,
  type PlannedCommand,
  type PlannedStart,
  type RunSelection,
} from './planned-vms.js';

/** Something a run needs that this machine lacks, found before anything runs. */
export interface PreflightProblem {
  /** A program not on PATH, or a file that is not there. */
  reason: 'missing-program' | 'missing-file';
  package: string;
  /** The command that needs it. */
  command: string;
  /** Its package's file, where the command is written. */
  file: string;
  message: string;
}

/** What the preflight found: problems (nothing may run) and warnings (it may, but …). */
export interface PreflightReport {
  problems: PreflightProblem[];
  warnings: string[];
}

/** What to check: the plans, which of their commands run, and what VM starts may take. */
export interface PreflightOptions {
  home: string;
  plans: readonly PackagePlan[];
  runs: RunSelection;
  /** What of this node VM starts may take. */
  admission: AdmissionPolicy;
  /** What the coordinator knows of other nodes' room for VMs (see `fitWarnings`). */
  reported: ReportedBudgets;
  /** The PATH programs are looked up in; this process's by default. */
  path?: string | undefined;
}

/** The programs an action runs: those it would fail without, mid-apply, with `spawn … ENOENT`. */
function programsOf(planned: PlannedCommand): string[] {
  const { resource, action, params } = planned.command;
  if (resource === 'emulation' && action === 'start') return ['qemu-system-x86_64'];
  if (resource !== 'storage') return [];
  // qemu-img makes qcow2 images and resizes every kind (a larger image_size grows it in place).
  if (action === 'resize_image') return ['qemu-img'];
  if (
    action === 'create_image' &&
    (params['format'] === 'qcow2' || planned.item.action === 'update')
  )
    return ['qemu-img'];
  return [];
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Whether `name` is an executable file in a directory of `path`, as `execvp` looks it up. */
async function onPath(name: string, path: string): Promise<boolean> {
  for (const dir of path.split(delimiter)) {
    if (dir !== '' && (await isExecutable(join(dir, name)))) return true;
  }
  return false;
}

async function missingPrograms(
  commands: readonly PlannedCommand[],
  path: string,
): Promise<PreflightProblem[]> {
  const needs = new Map<string, PlannedCommand[]>();
  for (const planned of commands) {
    for (const program of programsOf(planned))
      needs.set(program, [...(needs.get(program) ?? []), planned]);
  }
  const problems: PreflightProblem[] = [];
  for (const [program, by] of needs) {
    const first = by[0];
    if (first === undefined || (await onPath(program, path))) continue;
    const more =
      by.length > 1
        ? `; so do ${String(by.length - 1)} more command${by.length === 2 ? '' : 's'}`
        : '';
    problems.push({
      reason: 'missing-program',
      package: first.package,
      command: first.command.id,
      file: first.file,
      message: `${first.command.resource}.${first.command.action} runs ${program}, which is not on PATH${more}`,
    });
  }
  return problems;
}

/** `volume/image` of what a storage command makes. */
function madeBy(command: CommandSpec): string | undefined {
  const p = command.params;
  if (command.resource !== 'storage') return undefined;
  if (command.action === 'create_image') return `${String(p['volume'])}/${String(p['image'])}`;
  if (command.action === 'copy_image') return `${String(p['to_volume'])}/${String(p['to_image'])}`;
  return undefined;
}

/**
 * The kernel, initrd and disks of the VMs a run starts that do not exist under the images root
 * and that no command of the run makes (a `create_image`, a `copy_image` target). A run with a
 * shell command may make any file, so its files are not judged.
 */
async function missingFiles(
  home: string,
  starts: readonly PlannedStart[],
  commands: readonly PlannedCommand[],
): Promise<PreflightProblem[]> {
  if (commands.some((c) => c.command.resource === 'shell')) return [];
  const made = new Set(commands.map((c) => madeBy(c.command)));
  const images = agentRoots(home).images;
  const problems: PreflightProblem[] = [];
  for (const start of starts) {
    const config = start.config;
    if (config === undefined) continue;
    const files: [string, string][] = [
      ...(config.kernel === undefined ? [] : [['kernel', config.kernel] as [string, string]]),
      ...(config.initrd === undefined ? [] : [['initrd', config.initrd] as [string, string]]),
      ...config.images.map((i): [string, string] => ['disk', `${i.volume}/${i.path}`]),
    ];
    const at = start.configCommand ?? start.command;
    for (const [what, file] of files) {
      if (made.has(file)) continue;
      let why: string | undefined;
      try {
        const found = await confinePath(images, file, 'relative');
        if (found.kind === 'missing') why = 'does not exist under the images root';
        else if (found.kind !== 'file') why = 'is not a file';
      } catch (error) {
        why = `cannot be used: ${messageOf(error)}`;
      }
      if (why === undefined) continue;
      problems.push({
        reason: 'missing-file',
        package: start.package,
        command: at.id,
        file: start.file,
        message: `the ${what} '${file}' of VM ${start.id} ${why} (${images}), and no command of this run makes it`,
      });
    }
  }
  return problems;
}

/**
 * Checks, before anything runs, what the commands `runs` carries out need of this machine: the
 * programs they run (`qemu-system-x86_64` for a start, `qemu-img` for qcow2 and resizes) on PATH,
 * and the kernel, initrd and disks of the VMs they start under the images root, for the commands
 * of this node; and whether the VMs fit what their node has free, this one or another (warnings
 * only; see `fitWarnings`). Reads files; changes nothing.
 */
export async function preflight(options: PreflightOptions): Promise<PreflightReport> {
  const commands = plannedCommands(options.plans, options.runs);
  const starts = await plannedStarts(options.home, options.plans, options.runs);
  const here = starts.filter((s) => s.command.node === defaults.command.node);
  const [programs, files, warnings] = await Promise.all([
    missingPrograms(commands, options.path ?? process.env['PATH'] ?? ''),
    missingFiles(options.home, here, commands),
    fitWarnings({
      home: options.home,
      starts,
      commands,
      policy: options.admission,
      reported: options.reported,
    }),
  ]);
  return { problems: [...programs, ...files], warnings };
}

/**
 * Throws SpinError `preflight_failed` (exit 2) naming every problem of `report` with the file,
 * line and column of the command that has it; returns when there are none.
 */
export async function refuseProblems(report: PreflightReport): Promise<void> {
  const { problems } = report;
  if (problems.length === 0) return;
  const lines = await Promise.all(
    problems.map(async (p) => {
      const position = await commandPosition(p.file, p.command);
      const at =
        position === undefined
          ? p.file
          : `${p.file}:${String(position.line)}:${String(position.column)}`;
      return `${at}: ${p.package}/${p.command}: ${p.message}`;
    }),
  );
  const has = (reason: PreflightProblem['reason']): boolean =>
    problems.some((p) => p.reason === reason);
  throw new SpinError(
    'preflight_failed',
    `${problems.length === 1 ? 'A package needs what this machine lacks' : `Packages need what this machine lacks (${String(problems.length)} problems)`}; nothing was run:\n  ${lines.join('\n  ')}`,
    {
      details: { problems },
      suggestions: [
        ...(has('missing-program')
          ? [
              'Install qemu (Debian: apt-get install qemu-system-x86 qemu-utils), or add its directory to PATH.',
            ]
          : []),
        ...(has('missing-file')
          ? [
              'Put the missing files under the images root, or make them with a command the start needs (copy_image).',
            ]
          : []),
      ],
    },
  );
}

/**
 * The preflight of an apply in `session` (its home, admission policy and the other nodes' room
 * for VMs): reports each warning through `warn`, then refuses the run when anything it needs is
 * missing (see `refuseProblems`).
 */
export async function preflightOrRefuse(
  session: Pick<PreflightOptions, 'home' | 'admission' | 'reported'>,
  plans: readonly PackagePlan[],
  runs: RunSelection,
  warn: (message: string) => void,
): Promise<void> {
  const { home, admission, reported } = session;
  const report = await preflight({ home, admission, reported, plans, runs });
  for (const warning of report.warnings) warn(warning);
  await refuseProblems(report);
}
