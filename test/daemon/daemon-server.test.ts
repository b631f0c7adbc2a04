import { statSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SpinError } from '../../src/core/errors.js';
import type { BrokerEvent } from '../../src/broker/broker-types.js';
import { DaemonClient } from '../../src/daemon/daemon-client.js';
import { daemonToken, startDaemon } from '../../src/daemon/daemon-runner.js';
import type { RunningDaemon } from '../../src/daemon/daemon-runner.js';
import { openBroker } from '../../src/daemon/open-broker.js';
import { submitPackage } from '../../src/broker/submit-package.js';
import { cmd, tempHome } from '../support/broker-helpers.js';

interface Raw {
  status: number;
  body: string;
}

/** One raw HTTP request over the socket (or TCP), so tests can send what no client would. */
function raw(
  where: { socketPath: string } | { host: string; port: number },
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request({ ...where, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('daemon over its real socket', () => {
  let home: ReturnType<typeof tempHome>;
  let daemon: RunningDaemon;
  let client: DaemonClient;
  let socket: { socketPath: string };

  beforeEach(async () => {
    home = tempHome();
    daemon = await startDaemon({ home: home.dir, tcp: { host: '127.0.0.1', port: 0 } });
    socket = { socketPath: daemon.paths.socket };
    client = await DaemonClient.connect(socket);
  });
  afterEach(async () => {
    try {
      await client.close();
    } finally {
      try {
        await daemon.stop('test over');
      } finally {
        home.remove();
      }
    }
  });

  it('creates the socket 0600 in a 0700 home, and openBroker finds it', async () => {
    expect(statSync(daemon.paths.socket).mode & 0o777).toBe(0o600);
    expect(statSync(home.dir).mode & 0o777).toBe(0o700);
    const broker = await openBroker({ home: home.dir });
    try {
      expect(broker.kind).toBe('daemon');
    } finally {
      await broker.close();
    }
  });

  it('refuses a second broker on the same home, naming the pid', async () => {
    const error = await startDaemon({ home: home.dir }).then(
      // Were it to start after all, it is stopped before the home goes.
      (second) => second.stop('test over'),
      (e: unknown) => e as SpinError,
    );
    expect(error).toMatchObject({ code: 'daemon_running', exitCode: 3 });
    expect((error as SpinError).message).toContain(String(process.pid));
  });

  it('answers malformed, oversize and unknown requests with a 4xx and changes nothing', async () => {
    const pkg = await client.createPackage({ name: 'p' });
    const commands = `/v1/packages/${pkg}/commands`;
    const json = { 'content-type': 'application/json' };
    const cases: [string, string, string | Buffer | undefined, number, string][] = [
      ['POST', commands, '{"commands": [', 400, 'not JSON'],
      ['POST', commands, '[]', 400, 'JSON object'],
      ['POST', commands, '{"commands": []}', 400, '1 to 10,000'],
      ['POST', commands, '{"commands": [{"resource": "storage"}]}', 400, 'commands[0].action'],
      [
        'POST',
        commands,
        '{"commands": [{"resource":"s","action":"a","retries":-1}]}',
        400,
        'retries',
      ],
      ['POST', commands, Buffer.alloc(5 * 1024 * 1024, 32), 413, 'over'],
      ['POST', '/v1/packages', '{"ttlMs": "soon"}', 400, 'ttlMs'],
      ['GET', '/v1/packages/p-nope', undefined, 404, 'no package'],
      ['GET', '/v2/anything', undefined, 404, 'no route'],
      ['DELETE', `/v1/packages/${pkg}`, undefined, 400, 'not allowed'],
    ];
    for (const [method, path, body, status, message] of cases) {
      const reply = await raw(socket, method, path, body, json);
      expect([path, reply.status]).toEqual([path, status]);
      expect((JSON.parse(reply.body) as { error: { message: string } }).error.message).toContain(
        message,
      );
    }
    const status = await client.status(pkg);
    expect(status.commands).toEqual([]);
    expect(status.state).toBe('staged');
    expect((await client.health()).pid).toBe(process.pid);
  });

  it('drops a request whose body keeps streaming past the limit without a length', async () => {
    const reply = await new Promise<number>((resolve, reject) => {
      const req = request({ ...socket, method: 'POST', path: '/v1/packages' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 32);
      for (let i = 0; i < 80; i++) req.write(chunk);
      req.end();
    });
    expect(reply).toBe(413);
    expect(await client.listPackages()).toEqual([]);
  });

  it('requires the bearer token on TCP, and serves with it', async () => {
    const tcp = { host: '127.0.0.1', port: daemon.server.tcpPort! };
    expect((await raw(tcp, 'GET', '/v1/health')).status).toBe(401);
    const wrong = { authorization: 'Bearer not-the-token' };
    expect((await raw(tcp, 'GET', '/v1/health', undefined, wrong)).status).toBe(401);
    const token = daemonToken(daemon.paths);
    const overTcp = await DaemonClient.connect({ ...tcp, token });
    try {
      expect((await overTcp.health()).service).toBe('spind');
    } finally {
      await overTcp.close();
    }
  });

  it('runs a test consumer over the agent connection: lease, renew, ack with next', async () => {
    const consumer = await client.consumer({ node: 'local', resource: 'storage', holder: 't' });
    const waiting = consumer.lease({ waitMs: 10_000 });
    const pkg = await client.createPackage();
    await client.addCommands(pkg, [
      cmd('storage', { id: 'a' }),
      cmd('storage', { id: 'b', retries: 1 }),
    ]);
    expect(await client.enqueue(pkg)).toBe('enqueued');
    const a = (await waiting)!;
    expect(a.spec).toMatchObject({ id: 'a', resource: 'storage', action: 'noop' });
    expect(await consumer.renew(a)).toBeGreaterThan(Date.now());
    const stale = await consumer
      .ack({ ...a, attemptId: 'old' }, { ok: true })
      .catch((e: unknown) => e as SpinError);
    expect(stale).toMatchObject({ code: 'stale_attempt' });
    const { next } = await consumer.ack(a, { ok: true, output: 'made' }, { next: true });
    const failed = await consumer.ack(next!, {
      ok: false,
      error: { code: 'action_failed', message: 'boom' },
    });
    expect(failed.outcome.state).toBe('ready');
    await consumer.close();
    expect((await client.status(pkg)).commands.map((c) => c.state)).toEqual(['succeeded', 'ready']);
  });

  it('answers a bad agent line with an error and keeps the connection', async () => {
    const conn = connect(socket.socketPath);
    const lines: string[] = [];
    let buffer = '';
    const got = (n: number): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (lines.length >= n) resolve();
          else conn.once('data', check);
        };
        check();
      });
    conn.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const parts = buffer.split(/\r?\n/);
      buffer = parts.pop() ?? '';
      lines.push(...parts);
    });
    conn.write(
      'GET /v1/agent?resource=storage HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: spin-agent\r\n\r\n',
    );
    await got(3);
    expect(lines[0]).toContain('101');
    lines.length = 0;
    conn.write('this is not json\n{"id": 7, "op": "fly"}\n{"id": 8, "op": "lease"}\n');
    await got(3);
    const replies = lines.map((l) => JSON.parse(l) as { id: number | null; ok: boolean });
    expect(replies).toEqual([
      { id: null, ok: false, error: expect.objectContaining({ code: 'invalid_input' }) as unknown },
      { id: 7, ok: false, error: expect.objectContaining({ code: 'invalid_input' }) as unknown },
      { id: 8, ok: true, lease: null },
    ]);
    conn.destroy();
  });

  it('gives back the leases of an agent whose connection drops', async () => {
    const pkg = await client.createPackage();
    await client.addCommands(pkg, [cmd('storage', { id: 'a' })]);
    await client.enqueue(pkg);
    const events: BrokerEvent[] = [];
    const readyAgain = new Promise<void>((resolve) => {
      void client
        .subscribe(
          (e) => {
            events.push(e);
            if (e.type === 'command' && e.from === 'running' && e.to === 'ready') resolve();
          },
          { packageId: pkg },
        )
        .then(() => undefined);
    });
    const first = await client.consumer({ node: 'local', resource: 'storage' });
    expect((await first.lease())?.attempt).toBe(1);
    await first.close();
    await readyAgain;
    const second = await client.consumer({ node: 'local', resource: 'storage' });
    expect((await second.lease())?.attempt).toBe(2);
    expect(events.map((e) => (e.type === 'refused' ? e.type : e.to))).toContain('running');
  });

  it('streams transitions as server-sent events when asked for text/event-stream', async () => {
    const frames: string[] = [];
    let seen: () => void = () => undefined;
    const staged = new Promise<void>((resolve) => (seen = resolve));
    const req = request({
      ...socket,
      method: 'GET',
      path: '/v1/events',
      headers: { accept: 'text/event-stream' },
    });
    const type = new Promise<string | undefined>((resolve) => {
      req.on('response', (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          frames.push(...chunk.split('\n\n').filter((f) => f !== ''));
          if (frames[0] !== undefined) resolve(res.headers['content-type']);
          if (frames.some((f) => f.includes('"staged"'))) seen();
        });
      });
    });
    req.on('error', () => undefined);
    req.end();
    expect(await type).toBe('text/event-stream');
    await client.createPackage({ name: 'sse' });
    await staged;
    req.destroy();
    expect(frames[0]).toBe('data: {"type":"subscribed"}');
    expect(frames[1]).toMatch(/^data: \{"type":"package",.*"name":"sse","to":"staged"\}$/);
  });

  it('submits a loaded package of 5,000 commands in chunks and enqueues it at once', async () => {
    const commands = Array.from({ length: 5_000 }, (_, i) => ({
      ...cmd('storage'),
      id: `k${String(i)}`,
    }));
    const spec = { name: 'big', file: 'big.spin.yaml', commands };
    const { packageId, state } = await submitPackage(client, spec);
    expect(state).toBe('enqueued');
    const status = await client.status(packageId);
    expect(status.name).toBe('big');
    expect(status.commands.map((c) => c.id)).toEqual(commands.map((c) => c.id));
  });

  it('shares commits between agents acking together (group commit)', async () => {
    const resources = ['q0', 'q1', 'q2', 'q3'];
    const pkg = await client.createPackage();
    await client.addCommands(
      pkg,
      resources.flatMap((r) => Array.from({ length: 50 }, () => cmd(r))),
    );
    await client.enqueue(pkg);
    const before = (await client.health()).commits!;
    await Promise.all(
      resources.map(async (resource) => {
        const consumer = await client.consumer({ node: 'local', resource });
        let lease = await consumer.lease();
        while (lease) lease = (await consumer.ack(lease, { ok: true }, { next: true })).next;
        await consumer.close();
      }),
    );
    expect((await client.status(pkg)).state).toBe('succeeded');
    const after = (await client.health()).commits!;
    const operations = after.operations - before.operations;
    const commits = after.commits - before.commits;
    expect(operations).toBeGreaterThanOrEqual(200);
    // Four agents acking at once: their acks (each with the next lease) share commits.
    expect(commits).toBeLessThan(operations * 0.75);
  });
});
