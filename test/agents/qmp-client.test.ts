import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QmpClient } from '../../src/agents/emulation/qmp-client.js';
import { SpinError } from '../../src/core/errors.js';

// A fake QMP monitor: greets, answers commands from a table, can send events and hang up.
let dir: string;
let server: Server;
let peer: Socket | undefined;
const replies: Record<string, object> = {
  qmp_capabilities: { return: {} },
  'query-status': { return: { status: 'running', running: true } },
  bogus: { error: { class: 'CommandNotFound', desc: 'The command bogus has not been found' } },
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spin-qmp-'));
  server = createServer((socket) => {
    peer = socket;
    socket.write('{"QMP": {"version": {}, "capabilities": []}}\r\n');
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const request = JSON.parse(buffer.slice(0, nl)) as { execute: string; id?: string };
        buffer = buffer.slice(nl + 1);
        if (request.execute === 'hang') continue;
        const reply = replies[request.execute] ?? { return: {} };
        // Events may come between a command and its reply; the client must not confuse them.
        socket.write('{"event": "NOISE", "timestamp": {"seconds": 1, "microseconds": 0}}\n');
        socket.write(`${JSON.stringify({ ...reply, id: request.id })}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(join(dir, 'qmp.sock'), resolve));
});

afterEach(async () => {
  peer?.destroy();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('QmpClient', () => {
  it('negotiates, runs commands, and reports QMP errors as SpinError', async () => {
    const qmp = await QmpClient.connect(join(dir, 'qmp.sock'), { timeoutMs: 2000 });
    expect(await qmp.execute('query-status')).toEqual({ status: 'running', running: true });
    const error: unknown = await qmp.execute('bogus').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpinError);
    expect((error as SpinError).code).toBe('action_failed');
    expect((error as SpinError).details).toEqual({ class: 'CommandNotFound' });
    qmp.close();
    await qmp.closed;
  });

  it('waits for events, including ones already received', async () => {
    const qmp = await QmpClient.connect(join(dir, 'qmp.sock'), { timeoutMs: 2000 });
    expect((await qmp.waitForEvent('NOISE', 1000))?.event).toBe('NOISE');
    const shutdown = qmp.waitForEvent('SHUTDOWN', 5000);
    peer?.write('{"event": "SHUTDOWN", "data": {"guest": true}}\n');
    expect(await shutdown).toMatchObject({ event: 'SHUTDOWN', data: { guest: true } });
    expect(await qmp.waitForEvent('NEVER', 10)).toBeUndefined();
    qmp.close();
  });

  it('says qemu is ending on its SHUTDOWN event, or when the monitor hangs up', async () => {
    const first = await QmpClient.connect(join(dir, 'qmp.sock'), { timeoutMs: 2000 });
    peer?.write('{"event": "SHUTDOWN", "data": {"guest": true}}\n');
    await first.ending;
    // ... while the connection is still open.
    expect(await Promise.race([first.closed.then(() => 'closed'), Promise.resolve('open')])).toBe(
      'open',
    );
    first.close();
    const second = await QmpClient.connect(join(dir, 'qmp.sock'), { timeoutMs: 2000 });
    peer?.destroy();
    await second.ending;
    await second.closed;
  });

  it('rejects pending commands when the monitor hangs up', async () => {
    const qmp = await QmpClient.connect(join(dir, 'qmp.sock'), { timeoutMs: 2000 });
    const pending = qmp.execute('hang');
    peer?.destroy();
    const error: unknown = await pending.catch((e: unknown) => e);
    expect((error as SpinError).code).toBe('unreachable');
    await qmp.closed;
  });

  it('fails with unreachable when nothing listens', async () => {
    const error: unknown = await QmpClient.connect(join(dir, 'none.sock'), {
      timeoutMs: 200,
    }).catch((e: unknown) => e);
    expect((error as SpinError).code).toBe('unreachable');
    expect((error as SpinError).retryable).toBe(true);
  });
});
