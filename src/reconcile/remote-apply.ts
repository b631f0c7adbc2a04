import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { SpinError } from '../core/errors.js';
import { formatDuration } from '../core/duration.js';
import { daemonTimeoutMs } from '../daemon/daemon-client.js';
import type { NatsOptions } from '../daemon/nats-connection.js';
import type { PlanDocument } from '../plan/plan-document.js';
import type { PreflightReport } from '../plan/preflight.js';
import type { ReconcileListener, ReconcileSummary } from './events.js';
import type { RemoteApplyRequest, RunMessage } from './remote-runs.js';

/** What `spin apply --nats` asks of the coordinator, besides the files. */
export type RemoteApplyOptions = Omit<RemoteApplyRequest, 'runId' | 'files'>;

/**
 * Applies package files through the coordinator of a fleet, from anywhere: the files (already
 * validated here) travel to it, are planned against its state and run through its broker, and
 * its progress events come back to `emit` as they happen. Ctrl-C (`signal`) asks it to cancel
 * the run. A coordinator that says nothing for `SPIN_DAEMON_TIMEOUT` (a run says it is alive
 * every 2 s) ends it with `unreachable` (exit 4). Resolves with the run's summary.
 */
export async function applyRemote(options: {
  nats: NatsOptions;
  files: readonly string[];
  request: RemoteApplyOptions;
  emit: ReconcileListener;
  signal: AbortSignal;
}): Promise<ReconcileSummary> {
  return applyRemoteFiles({ ...options, files: await readFiles(options.files) });
}

/** A package file as it travels to the coordinator: its name without a directory, its text. */
export type RemoteFile = RemoteApplyRequest['files'][number];

/**
 * applyRemote of files already read: `spin watch --nats` sends the text it validated, which
 * may no longer be what is on disk (a file saved invalid keeps its last good content).
 */
export function applyRemoteFiles(options: {
  nats: NatsOptions;
  files: readonly RemoteFile[];
  request: RemoteApplyOptions;
  emit: ReconcileListener;
  signal: AbortSignal;
}): Promise<ReconcileSummary> {
  const body = { ...options.request, files: options.files };
  return runRemote({ ...options, op: 'runs.apply', body });
}

/**
 * `spin destroy --nats`: destroys packages of the coordinator's state there (see applyRemote),
 * waiting up to `lockTimeoutMs` for its state lock.
 */
export function destroyRemote(options: {
  nats: NatsOptions;
  packages: string[];
  lockTimeoutMs?: number;
  emit: ReconcileListener;
  signal: AbortSignal;
}): Promise<ReconcileSummary> {
  const { packages, lockTimeoutMs } = options;
  const body = { packages, ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }) };
  return runRemote({ ...options, op: 'runs.destroy', body });
}

/** Starts a run on the coordinator and follows it to its end. */
async function runRemote(options: {
  nats: NatsOptions;
  op: string;
  body: Record<string, unknown>;
  emit: ReconcileListener;
  signal: AbortSignal;
}): Promise<ReconcileSummary> {
  const { NatsBroker } = await import('../daemon/nats-client.js');
  const client = await NatsBroker.connect(options.nats);
  const runId = randomBytes(12).toString('base64url');
  const timeoutMs = daemonTimeoutMs();
  let stop = (): void => undefined;
  try {
    return await new Promise<ReconcileSummary>((resolve, reject) => {
      let silence: NodeJS.Timeout | undefined;
      let ended = false;
      const heard = (): void => {
        clearTimeout(silence);
        silence = setTimeout(() => {
          finish();
          reject(
            new SpinError(
              'unreachable',
              `the coordinator said nothing about the run for ${formatDuration(timeoutMs)}`,
              { retryable: true, suggestions: ['`spin status --nats …` shows what it recorded'] },
            ),
          );
        }, timeoutMs);
      };
      const finish = (): void => {
        ended = true;
        clearTimeout(silence);
        options.signal.removeEventListener('abort', cancel);
      };
      const cancel = (): void => {
        client.call('runs.cancel', { runId }).catch((error: unknown) => {
          // Nobody takes the cancel: no end will come either, so a Ctrl-C does not wait for it.
          if (ended) return;
          finish();
          reject(
            error instanceof SpinError && error.code === 'unreachable'
              ? new SpinError(
                  'unreachable',
                  `${error.message}; what became of the run is unknown`,
                  {
                    cause: error,
                    suggestions: ['`spin status --nats …` shows what the coordinator recorded'],
                  },
                )
              : error instanceof Error
                ? error
                : new Error(String(error)),
          );
        });
      };
      client
        .followRun(runId, (value) => {
          heard();
          const message = value as RunMessage;
          if (message.type === 'event') options.emit(message.event);
          else if (message.type === 'end') {
            finish();
            if (message.error !== undefined) reject(SpinError.fromWire(message.error));
            else if (message.summary !== undefined) resolve(message.summary);
            else reject(new SpinError('internal', 'Internal error: a run ended without a summary'));
          }
        })
        .then(async (unsubscribe) => {
          stop = unsubscribe;
          heard();
          await client.call(options.op, { ...options.body, runId });
          // Once the run exists: a cancel sent before it would be lost.
          if (ended) return;
          if (options.signal.aborted) cancel();
          else options.signal.addEventListener('abort', cancel, { once: true });
        })
        .catch((error: unknown) => {
          finish();
          reject(error instanceof Error ? error : new Error(String(error)));
        });
    });
  } finally {
    stop();
    await client.close();
  }
}

/**
 * `spin plan --nats`: the plan of the files against the coordinator's state and machine, with
 * its preflight, computed there. The caller prints it and refuses the problems, as for a local
 * plan.
 */
export async function planRemote(
  nats: NatsOptions,
  files: readonly string[],
  selection: { targets: string[]; excludes: string[]; prune: boolean },
): Promise<{ doc: PlanDocument; checked: PreflightReport }> {
  const { NatsBroker } = await import('../daemon/nats-client.js');
  const client = await NatsBroker.connect(nats);
  try {
    return await client.call('runs.plan', { ...selection, files: await readFiles(files) });
  } finally {
    await client.close();
  }
}

function readFiles(paths: readonly string[]): Promise<RemoteFile[]> {
  return Promise.all(
    paths.map(async (path) => ({ name: basename(path), text: await readFile(path, 'utf8') })),
  );
}
