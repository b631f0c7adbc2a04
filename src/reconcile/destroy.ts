import type { Agent } from '../agents/agent.js';
import { SpinError } from '../core/errors.js';
import { runThroughBroker } from './apply.js';
import type { ReconcileListener, ReconcileSummary } from './events.js';
import { emptySummary } from './events.js';
import { inverseRequest } from './inverse-request.js';
import type { RunRequest } from './run-packages.js';
import { ReconcileSession } from './session.js';

/** What `spin destroy` is asked to undo. */
export interface DestroyOptions {
  home: string;
  statePath: string;
  /** Names of packages in the state. */
  packages: readonly string[];
  lockTimeoutMs?: number;
  /** Agents in place of the built-in ones (see SessionOptions). */
  agents?: readonly Agent[];
  signal?: AbortSignal;
  emit?: ReconcileListener;
}

/**
 * Undoes everything the named packages made, through each action's inverse, in reverse
 * dependency order; a package leaves the state once all of its commands are undone. Commands
 * that never succeeded, or that leave nothing behind, are simply forgotten. A name that is not
 * in the state is an error (`not_found`, exit 2) and nothing runs.
 */
export async function destroy(options: DestroyOptions): Promise<ReconcileSummary> {
  const session = await ReconcileSession.open({
    ...options,
    command: 'spin destroy',
    onLockWait: (holder) => options.emit?.({ type: 'lock-wait', holder }),
  });
  try {
    await session.recover(options.emit ?? (() => undefined));
    return await destroyIn(session, options);
  } finally {
    await session.close();
  }
}

/** One destroy in an open session (see `destroy`). */
export async function destroyIn(
  session: ReconcileSession,
  options: Pick<DestroyOptions, 'packages' | 'signal' | 'emit'>,
): Promise<ReconcileSummary> {
  const data = session.state.data;
  const missing = options.packages.filter((name) => !Object.hasOwn(data.packages, name));
  if (missing.length > 0) {
    const known = Object.keys(data.packages);
    throw new SpinError(
      'not_found',
      `no package ${missing.map((m) => `'${m}'`).join(', ')} in the state`,
      {
        suggestions: [
          known.length > 0
            ? `packages in the state: ${known.join(', ')}`
            : 'the state holds no packages',
        ],
      },
    );
  }
  const requests: RunRequest[] = [];
  for (const name of options.packages) {
    const pkg = data.packages[name];
    if (pkg === undefined) continue;
    const records = Object.entries(pkg.commands).filter(([, r]) => r.status === 'succeeded');
    const { request } = inverseRequest(name, pkg.file, 'destroy', records, session.host, data);
    const undone = new Set(request.commands.map((c) => c.id));
    for (const id of Object.keys(pkg.commands)) if (!undone.has(id)) void session.forget(name, id);
    requests.push(request);
  }
  const summary = emptySummary();
  await runThroughBroker(session, [requests], summary, options);
  options.emit?.({ type: 'done', summary });
  return summary;
}
