import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { SpinError } from '../core/errors.js';
import type { WireError } from '../core/errors.js';
import { wireErrorOf } from '../daemon/agent-session.js';
import type { RemoteHandlers } from '../daemon/nats-responder.js';
import type { NodeRegistry } from '../daemon/node-registry.js';
import { loadPackages } from '../load/load-packages.js';
import { apply } from './apply.js';
import { destroy } from './destroy.js';
import type { ReconcileEvent, ReconcileSummary } from './events.js';
import type { AdmissionPolicy } from '../core/vm-budget.js';
import type { PackageSpec } from '../core/package.js';
import { planPackages } from './plan-packages.js';
import { readState } from './state-file.js';
import { registryBudgets } from './reported-budgets.js';
import { stateStatus } from './status.js';

/** An apply asked for over NATS: the files as the CLI read them, and its options. */
export interface RemoteApplyRequest {
  /** Where progress goes: `spin.<fleet>.runs.<runId>`. */
  runId: string;
  files: { name: string; text: string }[];
  targets?: string[];
  excludes?: string[];
  prune?: boolean;
  allowShell?: boolean;
  allowReplace?: boolean;
  nodeWaitMs?: number;
  /** How long to wait for the coordinator's state lock while another run holds it (default 0). */
  lockTimeoutMs?: number;
}

/** What a run publishes on its subject, in order; `end` is the last. */
export type RunMessage =
  | { type: 'event'; event: ReconcileEvent }
  | { type: 'tick' }
  | { type: 'end'; summary?: ReconcileSummary; error?: WireError };

/** How often a run says it is alive, so that a CLI can tell a quiet run from a lost one. */
export const runTickMs = 2_000;

const runIdPattern = /^[a-zA-Z0-9_-]{8,64}$/;

/**
 * The runs a coordinator carries out for CLIs elsewhere (`spin apply|status --nats`): the
 * packages are planned against the coordinator's state and run through its broker, and the
 * progress events go back on `spin.<fleet>.runs.<runId>`. The files are kept under
 * `$SPIN_HOME/remote/<runId>/`, which the state names as each package's file; the files of runs
 * the state no longer names are swept (`sweepRemoteFiles`): a watch applies its packages again
 * at every resync, and a run with nothing to do is named by nothing.
 */
export function remoteRunHandlers(
  home: string,
  options: { admission: AdmissionPolicy; nodes: NodeRegistry },
): RemoteHandlers {
  const reported = registryBudgets(options.nodes);
  const statePath = join(home, 'state.json');
  const running = new Map<string, AbortController>();
  // What a coordinator killed mid-run left behind.
  void sweepRemoteFiles(home, statePath, running);
  /** Starts a run in the background, its progress published on its subject; answers at once. */
  const start = (
    runId: string,
    publish: (runId: string, message: unknown) => void,
    work: (signal: AbortSignal, emit: (event: ReconcileEvent) => void) => Promise<ReconcileSummary>,
  ): Promise<unknown> => {
    if (running.has(runId))
      throw new SpinError('state_conflict', `run ${runId} is running already`);
    const controller = new AbortController();
    running.set(runId, controller);
    const send = (message: RunMessage): void => {
      publish(runId, message);
    };
    const tick = setInterval(() => {
      send({ type: 'tick' });
    }, runTickMs);
    work(controller.signal, (event) => {
      send({ type: 'event', event });
    })
      .then(
        (summary) => {
          send({ type: 'end', summary });
        },
        (error: unknown) => {
          send({ type: 'end', error: wireErrorOf(error) });
        },
      )
      .finally(() => {
        clearInterval(tick);
        running.delete(runId);
        void sweepRemoteFiles(home, statePath, running);
      });
    return Promise.resolve({ started: true });
  };
  return {
    'runs.apply': (body, publish) => {
      const request = parseApply(body);
      const paths = keepFiles(home, request.runId, request.files);
      return start(request.runId, publish, async (signal, emit) =>
        apply({
          home,
          statePath,
          packages: await loadValid(paths),
          admission: options.admission,
          reported,
          targets: request.targets ?? [],
          excludes: request.excludes ?? [],
          prune: request.prune ?? false,
          allowShell: request.allowShell ?? false,
          allowReplace: request.allowReplace ?? false,
          ...(request.nodeWaitMs === undefined ? {} : { nodeWaitMs: request.nodeWaitMs }),
          ...lockTimeoutOf(request.lockTimeoutMs),
          signal,
          emit,
        }),
      );
    },
    'runs.destroy': (body, publish) => {
      const request = body as
        { runId?: unknown; packages?: unknown; lockTimeoutMs?: unknown } | undefined;
      const runId = runIdOf(request?.runId);
      const names = request?.packages;
      if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
        throw new SpinError('invalid_input', 'body.packages must be an array of package names');
      }
      return start(runId, publish, (signal, emit) =>
        destroy({
          home,
          statePath,
          packages: names,
          ...lockTimeoutOf(request?.lockTimeoutMs),
          signal,
          emit,
        }),
      );
    },
    'runs.cancel': (body) => {
      const runId = (body as { runId?: unknown } | undefined)?.runId;
      const controller = typeof runId === 'string' ? running.get(runId) : undefined;
      controller?.abort('SIGINT');
      return Promise.resolve({ cancelled: controller !== undefined });
    },
    'runs.plan': async (body) => {
      const request = parseApply({
        ...(body as object),
        runId: randomBytes(12).toString('base64url'),
      });
      const paths = keepFiles(home, request.runId, request.files);
      running.set(request.runId, new AbortController()); // its files are in use
      try {
        return await planPackages({
          home,
          statePath,
          packages: await loadValid(paths),
          targets: request.targets ?? [],
          excludes: request.excludes ?? [],
          prune: request.prune ?? false,
          admission: options.admission,
          reported,
        });
      } finally {
        // A plan is not kept: only an apply's files are named by the state.
        running.delete(request.runId);
        rmSync(join(home, 'remote', request.runId), { recursive: true, force: true });
      }
    },
    'runs.status': (body) => {
      const name = (body as { name?: unknown } | undefined)?.name;
      return stateStatus({ home, statePath, ...(typeof name === 'string' ? { name } : {}) });
    },
  };
}

/**
 * Removes the files of runs that neither run nor are named by the state: a run's files are kept
 * while a package of the state names one of them (its file, in `spin status` and in the
 * file:line of a refusal that points at it), so they take the room of one copy per package.
 * Best effort: a state that cannot be read now leaves everything for the next sweep.
 */
export async function sweepRemoteFiles(
  home: string,
  statePath: string,
  running: ReadonlyMap<string, unknown>,
): Promise<string[]> {
  const root = join(home, 'remote');
  let runs: string[];
  let named: Set<string>;
  try {
    runs = await readdir(root);
    const state = await readState(statePath);
    named = new Set(
      Object.values(state?.packages ?? {}).map((pkg) => {
        const path = relative(root, pkg.file);
        return path.startsWith('..') ? '' : (path.split(sep)[0] ?? '');
      }),
    );
  } catch {
    return [];
  }
  const removed = runs.filter((runId) => !running.has(runId) && !named.has(runId));
  await Promise.all(
    removed.map((runId) => rm(join(root, runId), { recursive: true, force: true })),
  );
  return removed;
}

/** Writes a run's files under `$SPIN_HOME/remote/<runId>/<i>/<name>`; returns their paths. */
function keepFiles(home: string, runId: string, files: RemoteApplyRequest['files']): string[] {
  const dir = join(home, 'remote', runId);
  return files.map((file, i) => {
    mkdirSync(join(dir, String(i)), { recursive: true, mode: 0o700 });
    const path = join(dir, String(i), file.name);
    writeFileSync(path, file.text, { mode: 0o600 });
    return path;
  });
}

/** The packages of the files, which the CLI validated already; any problem is refused. */
async function loadValid(paths: string[]): Promise<PackageSpec[]> {
  const loaded = await loadPackages(paths);
  if (loaded.diagnostics.length > 0) {
    throw new SpinError('invalid_package', 'the files are not valid on the coordinator', {
      details: { diagnostics: loaded.diagnostics },
    });
  }
  return loaded.packages;
}

/** A run's wait for the state lock, when the request gives a sensible one. */
function lockTimeoutOf(value: unknown): { lockTimeoutMs?: number } {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
    ? { lockTimeoutMs: value }
    : {};
}

function runIdOf(value: unknown): string {
  if (typeof value !== 'string' || !runIdPattern.test(value)) {
    throw new SpinError('invalid_input', 'body.runId must be 8 to 64 letters, digits, - or _');
  }
  return value;
}

function parseApply(body: unknown): RemoteApplyRequest {
  const request = (body ?? {}) as Partial<RemoteApplyRequest>;
  runIdOf(request.runId);
  const files = request.files;
  if (
    !Array.isArray(files) ||
    files.length === 0 ||
    !files.every(
      (f) =>
        typeof f.text === 'string' &&
        typeof f.name === 'string' &&
        /^[^/\\\0]{1,255}$/.test(f.name) &&
        f.name !== '.' &&
        f.name !== '..',
    )
  ) {
    throw new SpinError('invalid_input', 'body.files must be [{name, text}] with plain file names');
  }
  return request as RemoteApplyRequest;
}
