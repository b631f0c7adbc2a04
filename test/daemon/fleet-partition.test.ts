import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerEvent } from '../../src/broker/broker-types.js';
import { binPath, killHard, requireBuild } from '../support/cli-process.js';
import { startSpin, testDir } from '../support/spin-cli.js';
import { natsServerPath } from '../support/nats-server.js';

/** Runs `ip` as root; the test's namespaces and links carry a random suffix. */
function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

/** Starts a process inside a network namespace; resolves once a line of its output matches. */
function startIn(
  ns: string,
  argv: string[],
  env: Record<string, string>,
  ready: RegExp,
  children: ChildProcess[],
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const look = (chunk: Buffer): void => {
      out += chunk.toString();
      const match = ready.exec(out);
      if (match !== null) resolve({ child, match });
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.once('exit', (code) => {
      reject(new Error(`${argv.join(' ')} exited ${String(code)}: ${out}`));
    });
  });
}

/**
 * A node on its own network namespace, joined to the coordinator's (which runs nats-server and
 * `spin daemon run --nats`) by a veth pair: real TCP between them. Its link is cut mid-command
 * and brought back.
 */
describe('a fleet across a network partition', () => {
  const suffix = String(randomInt(1_000_000));
  const coordNs = `spin-c${suffix}`;
  const nodeNs = `spin-a${suffix}`;
  const subnet = `10.${String(200 + randomInt(50))}.${String(randomInt(250))}`;
  const children: ChildProcess[] = [];

  beforeAll(() => {
    requireBuild();
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => killHard(c)));
    for (const ns of [coordNs, nodeNs]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // Not created.
      }
    }
  });

  it('loses nothing, succeeds nothing twice, keeps queue order, and refuses the late ack', async () => {
    const dir = await testDir('spin-partition-');
    const [coord, a] = [join(dir, 'coord'), join(dir, 'a')];
    ip('netns', 'add', coordNs);
    ip('netns', 'add', nodeNs);
    ip('link', 'add', `vc${suffix}`, 'type', 'veth', 'peer', 'name', `va${suffix}`);
    ip('link', 'set', `vc${suffix}`, 'netns', coordNs);
    ip('link', 'set', `va${suffix}`, 'netns', nodeNs);
    for (const [ns, link, host] of [
      [coordNs, `vc${suffix}`, '1'],
      [nodeNs, `va${suffix}`, '2'],
    ] as const) {
      ip('-n', ns, 'addr', 'add', `${subnet}.${host}/24`, 'dev', link);
      ip('-n', ns, 'link', 'set', link, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    const server = await startIn(
      coordNs,
      [natsServerPath, '-a', `${subnet}.1`, '-p', '-1'],
      {},
      /client connections on [^:]+:(\d+)/,
      children,
    );
    const url = `nats://${subnet}.1:${server.match[1] ?? ''}`;
    await startIn(
      coordNs,
      [process.execPath, binPath, 'daemon', 'run', '--no-agents', '--nats', url],
      { SPIN_HOME: coord },
      /"type":"listening"/,
      children,
    );
    const agentArgs = ['agent', '--nats', url, '--node', 'nodea', '--resources', 'shell'];
    await startIn(
      nodeNs,
      [
        process.execPath,
        binPath,
        ...agentArgs,
        '--allow-shell',
        '--lease',
        '1s',
        '--heartbeat',
        '200ms',
      ],
      { SPIN_HOME: a },
      /consuming/,
      children,
    );
    const file = join(dir, 'cut.spin.yaml');
    const lines = ['package: cut', 'commands:'];
    for (let i = 0; i < 3; i++) {
      const needs = i === 0 ? '' : `, needs: [c${String(i - 1)}]`;
      lines.push(
        `  c${String(i)}: { resource: shell, action: run, node: nodea${needs}, params: { argv: [sh, -c, "sleep 0.8 && echo c${String(i)} >> order"] } }`,
      );
    }
    writeFileSync(file, lines.join('\n') + '\n');
    // The apply reaches the coordinator on its unix socket (not namespaced).
    const run = startSpin(['apply', file, '--output', 'plain', '--allow-shell'], {
      env: { SPIN_HOME: coord },
    });
    await run.waitFor(/cut\/c0 running/);
    ip('-n', nodeNs, 'link', 'set', `va${suffix}`, 'down');
    // The lease (1 s) runs out at the coordinator while the node finishes c0 on its side.
    await run.waitFor(/cut\/c0 waiting for node nodea \(offline since/);
    ip('-n', nodeNs, 'link', 'set', `va${suffix}`, 'up');
    const done = await run.done;
    expect(done.code).toBe(0);
    expect(done.stdout).toContain('Apply complete: 3 succeeded.');
    // Queue order on the node: c0 (perhaps twice: at least once), then c1, then c2.
    const order = readFileSync(join(a, 'work', 'order'), 'utf8')
      .trim()
      .split('\n');
    expect(order.filter((l) => l !== 'c0')).toEqual(['c1', 'c2']);
    expect(order.lastIndexOf('c0')).toBeLessThan(order.indexOf('c1'));
    // Stop the coordinator gracefully so its audit log is whole, then read it.
    const coordinator = children[1]!;
    await new Promise<void>((resolve) => {
      coordinator.once('exit', () => {
        resolve();
      });
      coordinator.kill('SIGTERM');
    });
    const events = readFileSync(join(coord, 'audit.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as BrokerEvent);
    const succeeded = events.filter((e) => e.type === 'command' && e.to === 'succeeded');
    expect(succeeded.map((e) => (e.type === 'command' ? e.commandId : ''))).toEqual([
      'c0',
      'c1',
      'c2',
    ]);
    // The late ack of c0's first attempt (and any renew of it) came back over the healed link
    // and was refused by attempt id.
    const refused = events.flatMap((e) => (e.type === 'refused' ? [[e.commandId, e.code]] : []));
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused.map((r) => r.join(' ')))).toEqual(new Set(['c0 stale_attempt']));
  });
});
