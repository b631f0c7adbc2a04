import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SpinError } from '../core/errors.js';
import type { WireError } from '../core/errors.js';
import { wireErrorOf } from '../daemon/agent-session.js';
import type { RemoteHandlers } from '../daemon/nats-responder.js';
import { loadPackages } from '../load/load-packages.js';
import { apply } from './apply.js';
import type { ReconcileEvent, ReconcileSummary } from './events.js';
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
 * `$SPIN_HOME/remote/<runId>/`, which the state names as each package's file.
 */
export function remoteRunHandlers(home: string): RemoteHandlers {
  const statePath = join(home, 'state.json');
  const running = new Map<string, AbortController>();
  return {
    'runs.apply': (body, publish) => {
      const request = parseApply(body);
      if (running.has(request.runId)) {
        throw new SpinError('state_conflict', `run ${request.runId} is running already`);
      }
      const dir = join(home, 'remote', request.runId);
      const paths = request.files.map((file, i) => {
        const path = join(dir, String(i), file.name);
        mkdirSync(join(dir, String(i)), { recursive: true, mode: 0o700 });
        writeFileSync(path, file.text, { mode: 0o600 });
        return path;
      });
      const controller = new AbortController();
      running.set(request.runId, controller);
      const send = (message: RunMessage): void => {
        publish(request.runId, message);
      };
      const tick = setInterval(() => {
        send({ type: 'tick' });
      }, runTickMs);
      void (async () => {
        try {
          const loaded = await loadPackages(paths);
          if (loaded.diagnostics.length > 0) {
            throw new SpinError('invalid_package', 'the files are not valid on the coordinator', {
              details: { diagnostics: loaded.diagnostics },
            });
          }
          const summary = await apply({
            home,
            statePath,
            packages: loaded.packages,
            targets: request.targets ?? [],
            excludes: request.excludes ?? [],
            prune: request.prune ?? false,
            allowShell: request.allowShell ?? false,
            allowReplace: request.allowReplace ?? false,
            ...(request.nodeWaitMs === undefined ? {} : { nodeWaitMs: request.nodeWaitMs }),
            signal: controller.signal,
            emit: (event) => {
              send({ type: 'event', event });
            },
          });
          send({ type: 'end', summary });
        } catch (error) {
          send({ type: 'end', error: wireErrorOf(error) });
        } finally {
          clearInterval(tick);
          running.delete(request.runId);
        }
      })();
      return Promise.resolve({ started: true });
    },
    'runs.cancel': (body) => {
      const runId = (body as { runId?: unknown } | undefined)?.runId;
      const controller = typeof runId === 'string' ? running.get(runId) : undefined;
      controller?.abort('SIGINT');
      return Promise.resolve({ cancelled: controller !== undefined });
    },
    'runs.status': (body) => {
      const name = (body as { name?: unknown } | undefined)?.name;
      return stateStatus({ home, statePath, ...(typeof name === 'string' ? { name } : {}) });
    },
  };
}

function parseApply(body: unknown): RemoteApplyRequest {
  const request = body as Partial<RemoteApplyRequest> | undefined;
  if (typeof request?.runId !== 'string' || !runIdPattern.test(request.runId)) {
    throw new SpinError('invalid_input', 'body.runId must be 8 to 64 letters, digits, - or _');
  }
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
