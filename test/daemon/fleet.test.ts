import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { chromium } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BrokerEvent, Lease } from '../../src/broker/broker-types.js';
import { formatMib } from '../../src/core/vm-budget.js';
import type { NodeRecord, NodeStatus } from '../../src/daemon/node-registry.js';
import { until } from '../support/broker-helpers.js';
import { expectDocument } from '../support/output-schema.js';
import { killHard, requireBuild } from '../support/cli-process.js';
import { spin, startSpin, testDir } from '../support/spin-cli.js';
import type { CliRun, RunningSpin } from '../support/spin-cli.js';
import { fleetsEndingAfterEachTest } from '../support/test-fleet.js';
import { loggedIn } from '../support/web-login.js';

/** Writes `<dir>/<name>.spin.yaml`: package `name` with these command lines. Returns its path. */
function packageFile(dir: string, name: string, commands: string[]): string {
  const file = join(dir, `${name}.spin.yaml`);
  writeFileSync(file, [`package: ${name}`, 'commands:', ...commands].join('\n') + '\n');
  return file;
}

/** A fleet on this machine (see TestFleet), through the built binary. */
describe('a fleet over NATS', () => {
  const startFleet = fleetsEndingAfterEachTest();

  beforeAll(() => {
    requireBuild();
  });

  function apply(home: string, file: string, ...extra: string[]): RunningSpin {
    return startSpin(['apply', file, '--output', 'plain', ...extra], { env: { SPIN_HOME: home } });
  }

  /** The coordinator's audit log (stop it first): how many times each command succeeded. */
  function successes(home: string): Map<string, number> {
    const counts = new Map<string, number>();
    for (const line of readFileSync(join(home, 'audit.ndjson'), 'utf8').split('\n')) {
      if (line === '') continue;
      const event = JSON.parse(line) as BrokerEvent;
      if (event.type === 'command' && event.to === 'succeeded') {
        counts.set(event.commandId, (counts.get(event.commandId) ?? 0) + 1);
      }
    }
    return counts;
  }

  it('runs each command on the node it is pinned to', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, a, b] = ['coord', 'a', 'b'].map((n) => join(dir, n)) as [string, string, string];
    await fleet.coordinator(coord);
    await fleet.agent(a, 'nodea', '--resources', 'storage');
    await fleet.agent(b, 'nodeb', '--resources', 'storage');
    const file = packageFile(dir, 'two', [
      '  va: { resource: storage, action: add_volume, node: nodea, params: { path: va } }',
      '  vb: { resource: storage, action: add_volume, node: nodeb, needs: [va], params: { path: vb } }',
      '  va2: { resource: storage, action: add_volume, node: nodea, needs: [vb], params: { path: va2 } }',
    ]);
    const run = await apply(coord, file).done;
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Apply complete: 3 succeeded.');
    expect(existsSync(join(a, 'images/va'))).toBe(true);
    expect(existsSync(join(a, 'images/va2'))).toBe(true);
    expect(existsSync(join(a, 'images/vb'))).toBe(false);
    expect(existsSync(join(b, 'images/vb'))).toBe(true);
    expect(existsSync(join(b, 'images/va'))).toBe(false);
  });

  it('plans, applies and destroys from anywhere with --nats: on the coordinator, progress streamed back', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, a, laptop] = ['coord', 'a', 'laptop'].map((n) => join(dir, n)) as [
      string,
      string,
      string,
    ];
    await fleet.coordinator(coord);
    await fleet.agent(a, 'nodea', '--resources', 'storage');
    const file = packageFile(dir, 'remote', [
      '  v: { resource: storage, action: add_volume, node: nodea, params: { path: v } }',
      '  w: { resource: storage, action: add_volume, node: nodea, needs: [v], params: { path: w } }',
    ]);
    const remote = (...args: string[]): Promise<CliRun> =>
      startSpin([...args, '--nats', fleet.nats.url], { env: { SPIN_HOME: laptop } }).done;
    const planned = await remote('plan', file);
    expect(planned.code).toBe(0);
    expect(planned.stdout).toMatch(/^ {4}\+ v {2}create +new command$/m);
    expect(planned.stdout).toContain('Plan: 2 to create.');
    const first = await remote('apply', file, '--output', 'plain');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/remote\/v running/);
    expect(first.stdout).toMatch(/remote\/w succeeded/);
    expect(first.stdout).toContain('Apply complete: 2 succeeded.');
    expect(existsSync(join(a, 'images/w'))).toBe(true);
    // The coordinator keeps the files of the run its state names, and only those.
    const runs = (): string[] => readdirSync(join(coord, 'remote'));
    const [kept] = runs();
    expect(runs()).toHaveLength(1);
    // The coordinator's state decides: a second apply from anywhere has nothing to do.
    const second = await remote('apply', file, '--output', 'plain');
    expect([second.code, second.stdout.trim()]).toEqual([
      0,
      'Nothing to do: 2 commands up to date.',
    ]);
    await until(() => runs().length === 1, 'the second run swept');
    expect(runs()).toEqual([kept]);
    const status = await remote('status');
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^remote {2}\(remote\.spin\.yaml, sent over NATS, applied /m);
    expect(status.stdout).toMatch(/^ {2}w {2}succeeded {2}storage\.add_volume$/m);
    expect((await remote('plan', file)).stdout).toContain('No changes: 2 commands up to date.');
    const destroyed = await remote('destroy', 'remote', '--output', 'plain');
    expect(destroyed.code).toBe(0);
    expect(destroyed.stdout).toContain('Destroy complete: 2 undone.');
    expect(existsSync(join(a, 'images/v'))).toBe(false);
    expect((await remote('status')).stdout.trim()).toBe('No packages applied yet.');
    await until(() => runs().length === 0, "the destroyed package's files swept");
    const elsewhere = await remote('status', '--fleet', 'nobody');
    expect([elsewhere.code, elsewhere.stderr]).toEqual([
      4,
      'error: spin.nobody.api.runs.status: no coordinator answers on NATS (is `spin daemon` running with --nats and the same --fleet?)\n',
    ]);
    expect(existsSync(laptop)).toBe(false); // the CLI keeps no state of its own
  });

  it("refuses node A's requests for node B's work: the coordinator, and NATS with per-node permissions", async () => {
    const dir = await testDir('spin-fleet-');
    const config = join(dir, 'nats-server.conf');
    writeFileSync(config, examplePermissions());
    const fleet = await startFleet({ config });
    const coord = join(dir, 'coord');
    await fleet.coordinator(coord, {
      args: ['--nats-user', 'coordinator'],
      env: { SPIN_NATS_PASSWORD: 'coordinator-secret' },
    });
    const pkg = startSpin(['message', 'new', '--name', 'pinned'], { env: { SPIN_HOME: coord } });
    const id = (await pkg.done).stdout.trim().split(/\s+/).pop()!;
    const add = startSpin(
      ['message', 'add', id, 'storage', 'add_volume', 'path=vb', '--node', 'nodeb'],
      { env: { SPIN_HOME: coord } },
    );
    expect((await add.done).code).toBe(0);
    expect(
      (await startSpin(['message', 'enqueue', id], { env: { SPIN_HOME: coord } }).done).code,
    ).toBe(0);

    // Node B leases its command; node A, speaking on its own subjects, may not touch it.
    const nodeb = await connect({
      servers: fleet.nats.url,
      user: 'nodeb',
      pass: 'b-secret',
      inboxPrefix: '_INBOX_nodeb',
    });
    const nodea = await connect({
      servers: fleet.nats.url,
      user: 'nodea',
      pass: 'a-secret',
      inboxPrefix: '_INBOX_nodea',
    });
    try {
      const ask = async (
        nc: typeof nodea,
        subject: string,
        body: unknown,
      ): Promise<Record<string, unknown>> =>
        (await nc.request(subject, JSON.stringify(body), { timeout: 5_000 })).json();
      const nothing = await ask(nodea, 'spin.default.node.nodea.lease', { resource: 'storage' });
      expect(nothing).toEqual({ lease: null });
      const leased = await ask(nodeb, 'spin.default.node.nodeb.lease', {
        resource: 'storage',
        waitMs: 2_000,
      });
      const lease = leased['lease'] as Lease;
      expect(lease.spec.node).toBe('nodeb');
      const ref = {
        packageId: lease.packageId,
        commandId: lease.commandId,
        attemptId: lease.attemptId,
      };
      for (const op of ['renew', 'ack', 'release']) {
        const refused = await ask(nodea, `spin.default.node.nodea.${op}`, {
          ref,
          resource: 'storage',
          result: { ok: true },
        });
        expect(refused).toMatchObject({ error: { code: 'wrong_node' } });
      }
      // On node B's subjects, NATS itself refuses node A's credentials.
      await expect(
        nodea.request('spin.default.node.nodeb.lease', JSON.stringify({ resource: 'storage' }), {
          timeout: 2_000,
        }),
      ).rejects.toThrow(/[Pp]ermission/);
      const accepted = await ask(nodeb, 'spin.default.node.nodeb.ack', {
        ref,
        resource: 'storage',
        result: { ok: true },
      });
      expect(accepted).toEqual({ outcome: { state: 'succeeded' } });
    } finally {
      await nodea.close();
      await nodeb.close();
    }
  });

  it('shows a node online, offline after its agent is killed, and back when it starts again (spin nodes)', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, a] = ['coord', 'a'].map((n) => join(dir, n)) as [string, string];
    await fleet.coordinator(coord);
    const nodes = async (): Promise<NodeRecord[]> => {
      const run = await startSpin(['nodes', '--output', 'json', '--nats', fleet.nats.url], {
        env: { SPIN_HOME: join(dir, 'laptop') },
      }).done;
      expect(run.code).toBe(0);
      return expectDocument<{ nodes: NodeRecord[] }>('nodes', run.stdout).nodes;
    };
    /** Asks until `test` holds (each answer is a fresh CLI run; bounded by the test's timeout). */
    const until = async (test: (n: NodeRecord[]) => boolean): Promise<NodeRecord[]> => {
      for (;;) {
        const answer = await nodes();
        if (test(answer)) return answer;
      }
    };
    expect(await nodes()).toEqual([]);
    const running = await fleet.agent(a, 'nodea', '--resources', 'storage,shell');
    const online = await until((n) => n[0]?.state === 'online');
    expect(online[0]).toMatchObject({ name: 'nodea', resources: ['storage', 'shell'] });
    expect(online[0]!.capacity.cpus).toBeGreaterThan(0);
    expect(online[0]!.capacity.diskFreeBytes).toBeGreaterThan(0);
    const table = await startSpin(['nodes'], { env: { SPIN_HOME: coord } }).done;
    expect(table.stdout).toMatch(/^NODE\s+STATE\s+HEARTBEAT/);
    expect(table.stdout).toMatch(/nodea\s+online\s/);
    process.kill(running.pid, 'SIGKILL');
    const offline = await until((n) => n[0]?.state === 'offline');
    expect(offline[0]!.offlineSince).toBeGreaterThan(offline[0]!.lastHeartbeatAt);
    const after = await startSpin(['nodes'], { env: { SPIN_HOME: coord } }).done;
    expect(after.stdout).toMatch(/nodea\s+offline since \d\d:\d\d:\d\d/);
    // Its agent started again: the node is back, the same node.
    await fleet.agent(a, 'nodea', '--resources', 'storage,shell');
    const back = await until((n) => n[0]?.state === 'online');
    expect(back[0]!.firstSeenAt).toBe(online[0]!.firstSeenAt);
    expect(back[0]!.lastHeartbeatAt).toBeGreaterThan(offline[0]!.offlineSince!);
    expect(back[0]!.offlineSince).toBeUndefined();
  });

  it('warns of a VM that cannot fit what its node reported, naming the node, from the coordinator', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, b, laptop] = ['coord', 'b', 'laptop'].map((n) => join(dir, n)) as [
      string,
      string,
      string,
    ];
    const { ui } = (await fleet.coordinator(coord, { args: ['--ui', '--ui-port', '0'] })).listening;
    // nodeb keeps more memory for its host than any machine has: no VM fits there.
    await fleet.agent(b, 'nodeb', '--reserve-memory', '1000000G', '--cpu-overcommit', '2');
    const deadline = Date.now() + 30_000;
    let nodeb: NodeStatus | undefined;
    while (nodeb?.admission === undefined) {
      if (Date.now() > deadline)
        throw new Error(`nodeb reported no capacity: ${JSON.stringify(nodeb)}`);
      const run = await startSpin(['nodes', '--output', 'json', '--nats', fleet.nats.url], {
        env: { SPIN_HOME: laptop },
      }).done;
      nodeb = expectDocument<{ nodes: NodeStatus[] }>('nodes', run.stdout).nodes[0];
    }
    const { capacity, policy, vms } = nodeb.admission;
    expect(policy).toEqual({
      cpuOvercommit: 2,
      memoryOvercommit: 1,
      reserveMemoryMib: 1_024_000_000,
    });
    expect(vms).toEqual([]);
    expect(nodeb.freeForVms).toEqual({ cpus: capacity.cpus * 2, memoryMib: 0 });
    const table = await startSpin(['nodes'], { env: { SPIN_HOME: coord } }).done;
    expect(table.stdout).toMatch(/^NODE .* VMS +FREE FOR VMS +RESOURCES$/m);
    // The web view's Nodes page says the same.
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox'],
    });
    try {
      const { page } = await loggedIn(browser, coord);
      await page.goto(`${String(ui)}#/nodes`);
      expect(await page.locator('[data-free-for-vms=nodeb]').textContent()).toBe(
        `${String(capacity.cpus * 2)} CPUs, 0.0 GiB`,
      );
    } finally {
      await browser.close();
    }
    expect(table.stdout).toMatch(
      new RegExp(
        `^nodeb +online .* 0 +${String(capacity.cpus * 2)} CPUs, 0 MiB +storage,emulation,shell$`,
        'm',
      ),
    );

    const vm = (id: string, node: string): string[] => [
      `  config-${id}:`,
      '    resource: emulation',
      '    action: write_config',
      `    node: ${node}`,
      `    params: { id: ${id}, vm: { name: ${id}, cpus: 1, memory: 256, images: [{ volume: disks, path: ${id}.raw }] } }`,
      `  start-${id}: { resource: emulation, action: start, node: ${node}, needs: [config-${id}], params: { id: ${id} } }`,
    ];
    const file = packageFile(dir, 'fit', [...vm('web', 'nodeb'), ...vm('cache', 'nodec')]);
    const warnings = [
      `warning: package fit cannot fit on node nodeb: VM web asks 256 MiB of memory; 0 MiB is free (${formatMib(capacity.memoryMib)} total, 1000000 GiB kept for the host)`,
      'warning: package fit: cannot check whether VM cache fits on node nodec: its capacity is not known (no agent has connected)',
    ];
    // Planned on the coordinator over NATS, and on the coordinator's host, asking its daemon.
    for (const [how, args, home] of [
      ['--nats', ['--nats', fleet.nats.url], laptop],
      ['daemon', [], coord],
    ] as const) {
      const planned = await startSpin(['plan', file, ...args], { env: { SPIN_HOME: home } }).done;
      expect(planned.code, how).toBe(0);
      expect(
        planned.stdout.split('\n').filter((l) => l.startsWith('warning:')),
        how,
      ).toEqual(warnings);
    }
  });

  it('says why a command waits for its node, and --node-wait fails it with node_unavailable', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, b] = ['coord', 'b'].map((n) => join(dir, n)) as [string, string];
    await fleet.coordinator(coord);
    const gone = await fleet.agent(b, 'nodeb', '--resources', 'storage');
    const nodes = async (): Promise<NodeRecord[]> =>
      (
        JSON.parse(
          (await startSpin(['nodes', '--json'], { env: { SPIN_HOME: coord } }).done).stdout,
        ) as { nodes: NodeRecord[] }
      ).nodes;
    while ((await nodes())[0]?.state !== 'online');
    process.kill(gone.pid, 'SIGKILL');
    while ((await nodes())[0]?.state !== 'offline');
    const file = packageFile(dir, 'wait', [
      '  here: { resource: storage, action: add_volume, node: nodec, params: { path: here } }',
      '  there: { resource: storage, action: add_volume, node: nodeb, params: { path: there } }',
      '  after: { resource: storage, action: add_volume, node: nodeb, needs: [there], params: { path: after } }',
    ]);
    // Unbounded, it waits, and spin status says why.
    const waiting = apply(coord, file);
    await waiting.waitFor(/wait\/there waiting for node nodeb/);
    const status = await startSpin(['status'], { env: { SPIN_HOME: coord } }).done;
    expect(status.stdout).toMatch(
      /^ {4}there {2}waiting for node nodeb \(offline since \d\d:\d\d:\d\d\)$/m,
    );
    waiting.signal('SIGINT');
    expect((await waiting.done).code).toBe(1);
    const run = await apply(coord, file, '--node-wait', '1500ms').done;
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/wait\/here waiting for node nodec \(no agent has connected\)/);
    expect(run.stdout).toMatch(
      /wait\/there waiting for node nodeb \(offline since \d\d:\d\d:\d\d\)/,
    );
    expect(run.stdout).toMatch(
      /wait\/there failed( in \S+)?: node nodeb was unavailable for 1\.5s .*\[node_unavailable\]/,
    );
    expect(run.stdout).toMatch(/wait\/after skipped: needs 'there', which failed/);
    expect(run.stdout).toContain('0 succeeded, 2 failed, 1 skipped');
  });

  it('a Ctrl-C of an apply from elsewhere whose coordinator is gone ends it at once, exit 4', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, a] = ['coord', 'a'].map((n) => join(dir, n)) as [string, string];
    const { child } = await fleet.coordinator(coord);
    await fleet.agent(a, 'nodea', '--resources', 'shell', '--allow-shell');
    const file = packageFile(dir, 'long', [
      '  long: { resource: shell, action: run, node: nodea, params: { argv: [sleep, "10"] } }',
    ]);
    const run = startSpin(
      ['apply', file, '--output', 'plain', '--allow-shell', '--nats', fleet.nats.url],
      // Far longer than the test: only the refused cancel can end it.
      { env: { SPIN_HOME: join(dir, 'laptop'), SPIN_DAEMON_TIMEOUT: '1h' } },
    );
    await run.waitFor(/long\/long running/);
    await killHard(child);
    run.signal('SIGINT');
    const done = await run.done;
    expect(done.code).toBe(4);
    expect(done.stderr).toMatch(
      /no coordinator answers on NATS .*; what became of the run is unknown/,
    );
  });

  it('says why a command waits for a node whose agent does not serve its resource', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, b] = ['coord', 'b'].map((n) => join(dir, n)) as [string, string];
    await fleet.coordinator(coord);
    await fleet.agent(b, 'nodeb', '--resources', 'storage');
    const file = packageFile(dir, 'served', [
      '  v: { resource: storage, action: add_volume, node: nodeb, params: { path: v } }',
      '  s: { resource: shell, action: run, node: nodeb, needs: [v], params: { argv: ["true"] } }',
    ]);
    const run = await apply(coord, file, '--allow-shell', '--node-wait', '1s').done;
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/served\/v succeeded/);
    expect(run.stdout).toMatch(
      /served\/s waiting for node nodeb \(its agent serves storage, not shell\)/,
    );
    expect(run.stdout).toMatch(/served\/s failed: .*\[node_unavailable\]/);
  });

  it('says why without a daemon too: the embedded broker serves only its own node', async () => {
    const dir = await testDir('spin-fleet-');
    const file = packageFile(dir, 'away', [
      '  here: { resource: storage, action: add_volume, params: { path: here } }',
      '  there: { resource: storage, action: add_volume, node: nodeb, params: { path: there } }',
    ]);
    const run = await apply(join(dir, 'home'), file, '--node-wait', '1s').done;
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/away\/here succeeded/);
    expect(run.stdout).toMatch(/away\/there waiting for node nodeb \(no agent has connected\)/);
    expect(run.stdout).toMatch(/away\/there failed: .*\[node_unavailable\]/);
  });

  /**
   * A coordinator and a shell agent for nodea with a lease far longer than any test (only a
   * restart or a delivered result can settle its command), and an apply of `slow` (a program
   * that appends to `slow.runs` after `seconds`) then `after`, under way once `slow` runs.
   */
  async function slowCommandRunning(pkg: string, seconds: number) {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, a] = ['coord', 'a'].map((n) => join(dir, n)) as [string, string];
    await fleet.coordinator(coord);
    const args = ['--resources', 'shell', '--allow-shell', '--lease', '1h'];
    const first = await fleet.agent(a, 'nodea', ...args);
    const file = packageFile(dir, pkg, [
      `  slow: { resource: shell, action: run, node: nodea, params: { argv: [sh, -c, "sleep ${String(seconds)} && echo ran >> slow.runs"] } }`,
      '  after: { resource: shell, action: run, node: nodea, needs: [slow], params: { argv: ["true"] } }',
    ]);
    const run = apply(coord, file, '--allow-shell');
    await run.waitFor(new RegExp(`${pkg}/slow running`));
    const restart = async (): Promise<void> => {
      await fleet.agent(a, 'nodea', ...args);
    };
    /** The apply finished with both commands succeeded once, and the program ran to its end once. */
    const finishedOnce = async (): Promise<void> => {
      const done = await run.done;
      expect(done.code, done.stdout).toBe(0);
      expect(done.stdout).toContain('Apply complete: 2 succeeded.');
      expect(readFileSync(join(a, 'work/slow.runs'), 'utf8')).toBe('ran\n');
      await fleet.stopCoordinators();
      expect(successes(coord)).toEqual(
        new Map([
          ['slow', 1],
          ['after', 1],
        ]),
      );
    };
    return { fleet, a, first, restart, finishedOnce };
  }

  it('delivers again at once, to the restarted agent, the command of an agent killed mid-command, and it succeeds once', async () => {
    const { first, restart, finishedOnce } = await slowCommandRunning('slow', 1.5);
    process.kill(first.pid, 'SIGKILL');
    await first.done;
    await restart();
    // The killed agent's program was ended when the command was delivered again.
    await finishedOnce();
  });

  it('keeps a result finished while NATS is down through a kill -9 of its agent, and its restart delivers it: the command ran once', async () => {
    const { fleet, a, first, restart, finishedOnce } = await slowCommandRunning('owed', 1);
    await fleet.nats.kill();
    const owed = join(a, 'outbox', 'nodea.shell.json');
    await until(
      () => existsSync(owed) && readFileSync(owed, 'utf8') !== '',
      'the result kept in the outbox',
    );
    process.kill(first.pid, 'SIGKILL');
    await first.done;
    await fleet.nats.restart();
    await restart();
    await finishedOnce();
    expect(readFileSync(owed, 'utf8')).toBe('');
  });

  it('an agent says when no coordinator answers, and when one does', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const early = await fleet.agent(join(dir, 'a'), 'nodea', '--resources', 'storage');
    await early.waitFor(
      /^waiting for the coordinator: .*no coordinator answers on NATS \(is `spin daemon` running with --nats and the same --fleet\?\)$/,
    );
    await fleet.coordinator(join(dir, 'coord'));
    await early.waitFor(/^the coordinator answers again$/);
  });

  it('refuses a second agent for the same node and resource on one home, and lets it start once the first is gone', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, a] = ['coord', 'a'].map((n) => join(dir, n)) as [string, string];
    await fleet.coordinator(coord);
    const first = await fleet.agent(a, 'nodea', '--resources', 'storage');
    const second = await startSpin(
      ['agent', '--nats', fleet.nats.url, '--node', 'nodea', '--resources', 'storage'],
      { env: { SPIN_HOME: a } },
    ).done;
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(
      `an agent already serves this queue from this home: pid ${String(first.pid)}`,
    );
    // Another node's queue on the same home is its own.
    await fleet.agent(a, 'nodeb', '--resources', 'storage');
    process.kill(first.pid, 'SIGKILL');
    await first.done;
    await fleet.agent(a, 'nodea', '--resources', 'storage');
  });

  it('after a kill -9 of the coordinator mid-apply, its restart and the same apply finish every command, each succeeded once', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, a] = ['coord', 'a'].map((n) => join(dir, n)) as [string, string];
    const { child: killed } = await fleet.coordinator(coord);
    await fleet.agent(a, 'nodea', '--resources', 'shell', '--allow-shell', '--lease', '1s');
    const lines: string[] = [];
    for (let i = 0; i < 4; i++) {
      const needs = i === 0 ? '' : `, needs: [c${String(i - 1)}]`;
      lines.push(
        `  c${String(i)}: { resource: shell, action: run, node: nodea${needs}, params: { argv: [sh, -c, "sleep 0.5 && echo c${String(i)} >> runs"] } }`,
      );
    }
    const file = packageFile(dir, 'chain', lines);
    const env = { SPIN_HOME: coord, SPIN_DAEMON_TIMEOUT: '2s' };
    const first = startSpin(['apply', file, '--output', 'plain', '--allow-shell'], { env });
    await first.waitFor(/chain\/c1 running/);
    await killHard(killed);
    // The apply cannot know what became of c1: it says so, with exit 4, and what to do.
    const lost = await first.done;
    expect(lost.code).toBe(4);
    expect(lost.stderr).toContain('start the daemon again');
    await fleet.coordinator(coord);
    const second = startSpin(['apply', file, '--output', 'plain', '--allow-shell'], { env });
    const done = await second.done;
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect((await spin(['plan', file], { env })).stdout).toContain('No changes');
    // What ran before the kill is not run again; the command whose outcome was lost (c1) may be.
    const runs = readFileSync(join(a, 'work/runs'), 'utf8').trim().split('\n');
    const times = (id: string): number => runs.filter((r) => r === id).length;
    expect([times('c0'), times('c2'), times('c3')], runs.join(' ')).toEqual([1, 1, 1]);
    expect(times('c1')).toBeGreaterThanOrEqual(1);
    expect(times('c1')).toBeLessThanOrEqual(2);
    const state = JSON.parse(readFileSync(join(coord, 'state.json'), 'utf8')) as {
      packages: Record<string, { commands: Record<string, { status: string }> }>;
    };
    expect(Object.values(state.packages['chain']?.commands ?? {}).map((c) => c.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
  });

  it('finishes an apply through a kill -9 and restart of nats-server, every command succeeded once', async () => {
    const fleet = await startFleet();
    const dir = await testDir('spin-fleet-');
    const [coord, a, b] = ['coord', 'a', 'b'].map((n) => join(dir, n)) as [string, string, string];
    await fleet.coordinator(coord);
    await fleet.agent(a, 'nodea', '--resources', 'shell', '--allow-shell', '--lease', '5s');
    await fleet.agent(b, 'nodeb', '--resources', 'shell', '--allow-shell', '--lease', '5s');
    const lines: string[] = [];
    for (const node of ['nodea', 'nodeb']) {
      for (let i = 0; i < 4; i++) {
        const needs = i === 0 ? '' : `, needs: [${node}${String(i - 1)}]`;
        lines.push(
          `  ${node}${String(i)}: { resource: shell, action: run, node: ${node}${needs}, params: { argv: [sleep, "0.4"] } }`,
        );
      }
    }
    const file = packageFile(dir, 'chains', lines);
    const run = apply(coord, file, '--allow-shell');
    await run.waitFor(/chains\/nodea1 running/);
    await fleet.nats.kill();
    await new Promise((resolve) => setTimeout(resolve, 700)); // an outage longer than a command
    await fleet.nats.restart();
    const done = await run.done;
    expect(done.code).toBe(0);
    expect(done.stdout).toContain('Apply complete: 8 succeeded.');
    await fleet.stopCoordinators();
    const counts = successes(coord);
    expect([...counts.values()]).toEqual(Array.from({ length: 8 }, () => 1));
  });
});

/** The permissions of examples/fleet/nats-server.conf, with passwords for the test. */
function examplePermissions(): string {
  const example = readFileSync(
    new URL('../../examples/fleet/nats-server.conf', import.meta.url),
    'utf8',
  );
  return example
    .replaceAll('$COORDINATOR_PASSWORD', '"coordinator-secret"')
    .replaceAll('$NODEA_PASSWORD', '"a-secret"')
    .replaceAll('$NODEB_PASSWORD', '"b-secret"')
    .replaceAll('$OPERATOR_PASSWORD', '"operator-secret"');
}
