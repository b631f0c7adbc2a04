import { admissionPolicy } from '../../cli/admission-flags.js';
import { daemonFlags } from '../../cli/daemon-flags.js';
import { natsOptionsOf } from '../../cli/nats-flags.js';
import { SpinCommand } from '../../cli/spin-command.js';
import { messageOf } from '../../core/errors.js';
import { spinHome } from '../../core/spin-home.js';
import { startDaemon } from '../../daemon/daemon-runner.js';
import type { DaemonLogEntry } from '../../daemon/daemon-runner.js';
import { AgentHost } from '../../executor/agent-host.js';
import { recordForDeadSubmitter } from '../../reconcile/record-orphaned.js';
import { startWebView } from '../../web/web-view.js';
import { remoteRunHandlers } from '../../reconcile/remote-runs.js';

/** `spin daemon run`: the daemon in the foreground, for systemd and containers. */
export default class DaemonRun extends SpinCommand {
  static override description =
    'Run the broker daemon in the foreground (for systemd: see examples/spind.service). It serves $SPIN_HOME/spind.sock, logs one JSON object a line, and stops gracefully on SIGTERM or SIGINT. A second daemon for the same SPIN_HOME exits 3.';
  static override examples = [
    '<%= config.bin %> daemon run',
    '<%= config.bin %> daemon run --tcp-port 7420   # also loopback TCP, token in $SPIN_HOME/spind.token',
    '<%= config.bin %> daemon run --ui              # the web view on http://127.0.0.1:7474/ (open it with `spin ui`)',
    '<%= config.bin %> daemon run --no-agents --nats nats://control:4222 --nats-creds coordinator.creds',
  ];
  static override flags = daemonFlags;

  async run(): Promise<void> {
    const { flags } = await this.parse(DaemonRun);
    const log = (entry: DaemonLogEntry): void => {
      this.log(JSON.stringify({ at: new Date().toISOString(), ...entry }));
      if (entry.type === 'listening') process.send?.(entry);
    };
    const home = spinHome();
    const nats = natsOptionsOf(flags);
    // An agent that fails (the store cannot be written) stops the daemon, which then exits with
    // that failure's code rather than serve queues nobody consumes. A stop asked for before the
    // daemon is up (a signal, a failure) is carried out as soon as it is: a SIGTERM that arrives
    // while it starts must not kill it midway, with its leftovers unended and its log unflushed.
    const failed: { error?: unknown } = {};
    const stopping: { reason?: string; stop?: (reason: string) => Promise<void> } = {};
    const stop = (reason: string): void => {
      stopping.reason ??= reason;
      void stopping.stop?.(reason);
    };
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        stop(signal);
      });
    }
    const daemon = await startDaemon({
      home,
      ...(flags.agents
        ? {
            host: (broker) =>
              new AgentHost(home, {
                allowShell: flags['allow-shell'],
                admission: admissionPolicy(flags),
                supervise: 'daemon',
              }).serve(broker, (error) => {
                failed.error = error;
                stop(`an agent failed: ${messageOf(error)}`);
              }),
          }
        : {}),
      // A CLI that submitted a run and died leaves its results to the daemon to record.
      onFinished: async (results) => {
        try {
          const done = await recordForDeadSubmitter(results);
          if (done !== undefined && done.recorded > 0) {
            log({
              type: 'recorded',
              package: results.name,
              statePath: done.statePath,
              results: done.recorded,
            });
          }
        } catch (error) {
          log({ type: 'record-failed', package: results.name, error: messageOf(error) });
        }
      },
      version: this.config.version,
      log,
      ...(flags.ui
        ? {
            ui: (broker, nodes) =>
              startWebView({
                broker,
                home,
                root: this.config.root,
                port: flags['ui-port'],
                nodes,
              }),
          }
        : {}),
      ...(nats === undefined
        ? {}
        : {
            nats,
            remote: (nodes) =>
              remoteRunHandlers(home, { admission: admissionPolicy(flags), nodes }),
          }),
      ...(flags['tcp-port'] === undefined
        ? {}
        : { tcp: { host: '127.0.0.1', port: flags['tcp-port'] } }),
    });
    stopping.stop = (reason) => daemon.stop(reason);
    if (stopping.reason !== undefined) void daemon.stop(stopping.reason);
    await daemon.stopped;
    if (failed.error !== undefined) {
      throw failed.error instanceof Error ? failed.error : new Error(messageOf(failed.error));
    }
  }
}
