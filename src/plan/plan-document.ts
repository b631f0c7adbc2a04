import { randomUUID } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import type { CommandSpec, PackageSpec } from '../core/package.js';
import type { LockHolder, StateData } from '../core/state-types.js';
import { SpinError } from '../core/errors.js';
import { displayText } from '../core/display-text.js';
import { contentHash } from '../load/load-package-file.js';
import type { PackagePlan, PlanAction } from './plan.js';
import { checkOutput, outputFormatVersion } from '../core/output-schemas.js';

/**
 * A plan as a document: what `spin plan --output json` prints and `spin plan --out FILE` saves,
 * and what `spin apply FILE` carries out exactly. It holds the state it was made against
 * (lineage and serial), the planning options, and each package as it was read (the SHA-256 of
 * its file, its commands with their params) with every command's planned change. Shape:
 * schemas/output/plan.schema.json.
 */
export interface PlanDocument {
  format_version: number;
  kind: 'plan';
  created_at: string;
  state: {
    path: string;
    /** Null when no state file existed yet. */
    lineage: string | null;
    serial: number;
    /** Who held the state's lock while the plan read it: the state may have changed since. */
    changing?: LockHolder;
  };
  options: { targets: string[]; excludes: string[]; prune: boolean };
  changes: boolean;
  summary: Record<PlanAction, number>;
  /** What may not go as planned on this machine (VMs that do not fit what is free). */
  warnings: string[];
  packages: PlanDocumentPackage[];
}

export interface PlanDocumentPackage {
  name: string;
  file: string;
  sha256: string | null;
  description?: string;
  commands: CommandSpec[];
  items: {
    id: string;
    action: PlanAction;
    reason: string;
    dependents?: string[];
    loses_data?: boolean;
    unmanaged?: boolean;
  }[];
}

/** The document of `plans`, made of `packages` against `state`. */
export function planDocument(
  plans: readonly PackagePlan[],
  packages: readonly PackageSpec[],
  context: {
    statePath: string;
    state: StateData | null;
    changing?: LockHolder | undefined;
    options: PlanDocument['options'];
    warnings?: string[];
  },
): PlanDocument {
  const summary: Record<PlanAction, number> = {
    create: 0,
    update: 0,
    replace: 0,
    drifted: 0,
    unchanged: 0,
    prune: 0,
  };
  for (const item of plans.flatMap((p) => p.items)) summary[item.action] += 1;
  const byName = new Map(packages.map((p) => [p.name, p]));
  return {
    format_version: outputFormatVersion,
    kind: 'plan',
    created_at: new Date().toISOString(),
    state: {
      path: context.statePath,
      lineage: context.state?.lineage ?? null,
      serial: context.state?.serial ?? 0,
      ...(context.changing === undefined ? {} : { changing: context.changing }),
    },
    options: context.options,
    changes: plans.some((p) => p.items.some((i) => i.action !== 'unchanged')),
    summary,
    warnings: context.warnings ?? [],
    packages: plans.map((plan) => {
      const pkg = byName.get(plan.name);
      return {
        name: plan.name,
        file: plan.file,
        sha256: pkg === undefined ? null : (contentHash(pkg) ?? null),
        ...(pkg?.description === undefined ? {} : { description: pkg.description }),
        commands: pkg?.commands ?? [],
        items: plan.items.map((i) => ({
          id: i.id,
          action: i.action,
          reason: i.reason,
          ...(i.dependents === undefined ? {} : { dependents: i.dependents }),
          ...(i.losesData === true ? { loses_data: true } : {}),
          ...(i.unmanaged === undefined ? {} : { unmanaged: true }),
        })),
      };
    }),
  };
}

/**
 * The plans of a document, with the records of `state` (for a replace or a prune, what the
 * command made): as `computePlan` returned them when the plan was made, if the state is the one
 * it was made against.
 */
export function plansOf(doc: PlanDocument, state: StateData | null): PackagePlan[] {
  return doc.packages.map((pkg) => {
    const commands = new Map(pkg.commands.map((c) => [c.id, c]));
    const records = state?.packages[pkg.name]?.commands ?? {};
    return {
      name: pkg.name,
      file: pkg.file,
      items: pkg.items.map((item) => {
        const command = commands.get(item.id);
        const record = Object.hasOwn(records, item.id) ? records[item.id] : undefined;
        return {
          id: item.id,
          action: item.action,
          reason: item.reason,
          ...(command === undefined || item.action === 'prune' ? {} : { command }),
          ...(record === undefined ? {} : { record }),
          ...(item.dependents === undefined ? {} : { dependents: item.dependents }),
          ...(item.loses_data === true ? { losesData: true } : {}),
          ...(item.unmanaged === true ? { unmanaged: {} } : {}),
        };
      }),
    };
  });
}

/** The packages a document was made of, for the checks apply makes again. */
export function packagesOf(doc: PlanDocument): PackageSpec[] {
  return doc.packages.map((pkg) => ({
    name: pkg.name,
    file: pkg.file,
    ...(pkg.description === undefined ? {} : { description: pkg.description }),
    commands: pkg.commands,
  }));
}

/**
 * Saves a plan to `path`: readable by its owner only (it holds the packages, and may hold
 * secrets), written whole or not at all (a temporary file, fsynced, renamed into place).
 */
export async function savePlan(path: string, doc: PlanDocument): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomUUID()}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(doc, null, 2)}\n`);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temp, path);
}

/**
 * Reads a saved plan. A file that is not one (not JSON, another kind of document, a newer format
 * version, or a shape its schema refuses) is `invalid_input` (exit 2), saying which.
 */
export async function readPlan(path: string): Promise<PlanDocument> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SpinError('not_found', `cannot read the plan ${path}: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new SpinError('invalid_input', `${path} is not a saved plan: it is not JSON`, {
      suggestions: ['Make one with spin plan <paths> --out FILE.'],
    });
  }
  const doc = data as Partial<PlanDocument> | null;
  if (doc?.kind !== 'plan') {
    throw new SpinError('invalid_input', `${path} is not a saved plan (spin plan --out FILE)`);
  }
  if (typeof doc.format_version === 'number' && doc.format_version > outputFormatVersion) {
    throw new SpinError(
      'invalid_input',
      `${path} was saved by a newer spin (format ${String(doc.format_version)}; this spin reads ${String(outputFormatVersion)})`,
    );
  }
  const problems = checkOutput('plan', data);
  if (problems.length > 0) {
    throw new SpinError(
      'invalid_input',
      `${path} is not a valid saved plan: ${displayText(problems.slice(0, 3).join('; '))}`,
    );
  }
  return data as PlanDocument;
}

/**
 * Whether `path` is a saved plan rather than a package file or directory: a file whose first
 * character that is not white space opens a JSON object (a package file is YAML, which never
 * starts so in practice, and its name ends in .spin.yaml).
 */
export async function isSavedPlan(path: string): Promise<boolean> {
  if (/\.ya?ml$/i.test(path)) return false;
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return false;
  }
  try {
    if (!(await handle.stat()).isFile()) return false;
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(256), 0, 256, 0);
    return buffer.subarray(0, bytesRead).toString('utf8').trimStart().startsWith('{');
  } finally {
    await handle.close();
  }
}
