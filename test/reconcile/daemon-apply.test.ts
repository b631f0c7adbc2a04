import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { spin, startSpin, testDir, type RunningSpin } from '../support/spin-cli.js';

const pkg = `package: via-daemon
commands:
  vol: { resource: storage, action: add_volume, params: { path: d } }
  img: { resource: storage, action: create_image, needs: [vol], params: { volume: d, image: i.raw, image_size: 1 } }
`;

/** A temp SPIN_HOME whose daemon is stopped, and which is removed, when the test ends. */
async function daemonHome(prefix: string): Promise<string> {
  const home = await testDir(prefix);
  onTestFinished(async () => {
    await spin(['daemon', 'stop'], { env: { SPIN_HOME: home } });
  });
  return home;
}

/** `spin agent <args>`, stopped (SIGTERM) and waited for when the test ends, before its daemon. */
function startAgent(args: string[], env: Record<string, string>): RunningSpin {
  const agent = startSpin(['agent', ...args], { env });
  onTestFinished(async () => {
    agent.signal('SIGTERM');
    await agent.done;
  });
  return agent;
}

describe('spin apply through the daemon', () => {
  it('runs commands on the daemon and its built-in agents', async () => {
    const home = await daemonHome('spin-daemon-apply-');
    const env = { SPIN_HOME: home };
    expect((await spin(['daemon', 'start'], { env })).code).toBe(0);
    const file = join(home, 'p.spin.yaml');
    await writeFile(file, pkg);
    const applied = await spin(['apply', file], { env });
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('broker: the spin daemon');
    expect(applied.stdout).toContain('Apply complete: 2 succeeded.');
    expect(existsSync(join(home, 'images/d/i.raw'))).toBe(true);
    const status = await spin(['status'], { env });
    expect(status.stdout).toMatch(/daemon: 1 package in its store/);
  });

  it('leaves the queues to `spin agent` processes with --no-agents', async () => {
    const home = await daemonHome('spin-daemon-agent-');
    const env = { SPIN_HOME: home };
    expect((await spin(['daemon', 'start', '--no-agents'], { env })).code).toBe(0);
    const agent = startAgent(['storage'], env);
    await agent.waitFor(/storage agent consuming local\/storage/);
    const file = join(home, 'p.spin.yaml');
    await writeFile(file, pkg);
    const applied = await spin(['apply', file], { env });
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('Apply complete: 2 succeeded.');
    agent.signal('SIGTERM');
    const stopped = await agent.done;
    expect(stopped.stdout).toContain('storage agent stopped');
    expect(stopped.code).toBe(0);
  });

  it('spin agent exits 4 when no daemon runs', async () => {
    const home = await testDir('spin-no-daemon-');
    const run = await spin(['agent', 'storage'], { env: { SPIN_HOME: home } });
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('no spin daemon runs');
  });
});
