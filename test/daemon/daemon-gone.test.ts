import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { killHard, runDaemonProcess } from '../support/cli-process.js';
import { startSpin, testDir, type RunningSpin } from '../support/spin-cli.js';

/**
 * An apply that talks to a daemon whose agents do not run (`--no-agents`): its command waits in
 * the queue, so the apply is still following the daemon when the test takes the daemon away.
 */
async function applyThroughDaemon(
  env: Record<string, string> = {},
): Promise<{ apply: RunningSpin; daemon: Awaited<ReturnType<typeof runDaemonProcess>> }> {
  const home = await testDir('spin-daemon-gone-');
  const file = join(home, 'pkg.spin.yaml');
  await writeFile(
    file,
    'package: gone\ncommands:\n  vol: { resource: storage, action: add_volume, params: { path: data } }\n',
  );
  const daemon = await runDaemonProcess(home);
  onTestFinished(async () => {
    daemon.kill('SIGCONT');
    await killHard(daemon);
  });
  const apply = startSpin(['apply', file, '--output', 'plain'], {
    env: { SPIN_HOME: home, ...env },
  });
  onTestFinished(async () => {
    apply.signal('SIGKILL');
    await apply.done;
  });
  await apply.waitFor(/broker: the spin daemon/);
  await apply.waitFor(/gone\/vol waiting/);
  return { apply, daemon };
}

/**
 * The end of `apply`, which each case expects within seconds; if it has not come in 40 s the
 * test fails showing what the apply printed, rather than as a bare timeout.
 */
async function endOf(apply: RunningSpin): Promise<Awaited<RunningSpin['done']>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`the apply did not end within 40 s; it printed:\n${apply.output()}`));
    }, 40_000);
  });
  try {
    return await Promise.race([apply.done, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('an apply whose daemon goes away', () => {
  it('exits 4 naming what is unknown when the daemon is killed mid-apply', async () => {
    const { apply, daemon } = await applyThroughDaemon();
    await killHard(daemon);
    const end = await endOf(apply);
    expect(end.code).toBe(4);
    expect(end.stderr).toMatch(/what became of the unfinished commands of gone is unknown/);
    expect(end.stderr).toMatch(/hint: start the daemon again/);
    expect(end.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('exits 4 when the daemon is paused past SPIN_DAEMON_TIMEOUT', async () => {
    const { apply, daemon } = await applyThroughDaemon({ SPIN_DAEMON_TIMEOUT: '3s' });
    daemon.kill('SIGSTOP');
    const end = await endOf(apply);
    expect(end.code).toBe(4);
    expect(end.stderr).toMatch(/the spin daemon did not answer within 3\.0s/);
  });

  it('ends on Ctrl-C within seconds while the daemon is paused', async () => {
    const { apply, daemon } = await applyThroughDaemon({ SPIN_DAEMON_TIMEOUT: '10m' });
    daemon.kill('SIGSTOP');
    apply.signal('SIGINT');
    const end = await endOf(apply);
    expect(end.code).toBe(4);
    expect(end.stderr).toMatch(/did not confirm the cancel within 5 s/);
  });
});
