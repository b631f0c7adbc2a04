import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { agentRoots } from '../../src/agents/agent-roots.js';
import { shellAgent } from '../../src/agents/shell/shell-agent.js';
import type { Broker } from '../../src/broker/broker.js';
import { openBroker } from '../../src/daemon/open-broker.js';
import { runAgent } from '../../src/executor/agent-runner.js';
import { cmd, testHome } from '../support/broker-helpers.js';
import { fileAppears } from '../support/file-appears.js';
import { alive } from '../support/process-alive.js';

const fake = fileURLToPath(new URL('../fixtures/fake-program.js', import.meta.url));
const node = process.execPath;

/** A broker on a temp home with the shell agent serving it; both end with the test. */
async function serving(): Promise<{
  home: string;
  broker: Broker;
  stop: AbortController;
  runner: Promise<void>;
}> {
  const home = testHome();
  const broker = await openBroker({ home, synchronous: 'normal', sweepIntervalMs: 0 });
  const stop = new AbortController();
  const runner = runAgent({
    broker,
    agent: shellAgent({ allowShell: true, killAfterMs: 300 }),
    roots: agentRoots(home),
    leaseMs: 300, // renewed every 100 ms: a lost lease is seen at once
    signal: stop.signal,
  });
  onTestFinished(async () => {
    stop.abort();
    await runner.catch(() => undefined);
    await broker.close();
  });
  return { home, broker, stop, runner };
}

async function submit(broker: Broker, argv: string[]): Promise<string> {
  const pkg = await broker.createPackage({ name: 'nap' });
  await broker.addCommands(pkg, [cmd('shell', { id: 'nap', action: 'run', params: { argv } })]);
  await broker.enqueue(pkg);
  return pkg;
}

/** Resolves with the package's final state, woken by its events. */
async function finished(broker: Broker, pkg: string): Promise<string> {
  let done: (state: string) => void = () => undefined;
  const ended = new Promise<string>((resolve) => (done = resolve));
  const unsubscribe = await broker.subscribe(
    (event) => {
      if (event.type === 'package' && ['succeeded', 'failed', 'cancelled'].includes(event.to))
        done(event.to);
    },
    { packageId: pkg },
  );
  const now = (await broker.status(pkg)).state;
  if (['succeeded', 'failed', 'cancelled'].includes(now)) done(now);
  try {
    return await ended;
  } finally {
    unsubscribe();
  }
}

describe('runAgent ends the process group of the command it runs', () => {
  it('when the lease is lost (the package was cancelled), before it takes the next command', async () => {
    const { home, broker } = await serving();
    const ready = join(home, 'child.pid');
    const first = await submit(broker, [
      node,
      fake,
      '--ignore-term',
      `--ready-file=${ready}`,
      '--sleep=600000',
    ]);
    const pid = Number(await fileAppears(ready));
    await broker.cancel(first);
    // The queue is serial: the next command runs only once the first action has returned.
    const next = await submit(broker, [node, fake, '--print=next']);
    expect(await finished(broker, next)).toBe('succeeded');
    expect(alive(pid)).toBe(false);
  });

  it('when the agent is stopped', async () => {
    const { home, broker, stop, runner } = await serving();
    const ready = join(home, 'child.pid');
    await submit(broker, [node, fake, '--ignore-term', `--ready-file=${ready}`, '--sleep=600000']);
    const pid = Number(await fileAppears(ready));
    stop.abort();
    await runner;
    expect(alive(pid)).toBe(false);
  });
});
