import { describe, expect, it } from 'vitest';
import { SpinError } from '../../src/core/errors.js';
import { heartbeatAdmission } from '../../src/agents/emulation/admission.js';
import { measureNode } from '../../src/agents/emulation/capacity.js';
import { defaultAdmission } from '../../src/core/vm-budget.js';
import { measureHeartbeat } from '../../src/daemon/node-heartbeat.js';
import {
  parseAgentRequest,
  parseCommandInputs,
  parseHeartbeat,
  parseNewPackage,
} from '../../src/daemon/wire-validation.js';
import { testDir } from '../support/spin-cli.js';

const refusal = (parse: () => unknown): SpinError => {
  try {
    parse();
  } catch (error) {
    if (error instanceof SpinError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
};

describe('wire validation', () => {
  it('fills defaults the way package files do and drops unknown fields', () => {
    expect(
      parseCommandInputs({ commands: [{ resource: 'storage', action: 'noop', colour: 'red' }] }),
    ).toEqual([
      {
        resource: 'storage',
        action: 'noop',
        params: {},
        needs: [],
        node: 'local',
        timeoutMs: 600_000,
        retries: 0,
      },
    ]);
    expect(parseNewPackage(undefined)).toEqual({});
  });

  it('names each bad field with what it must be', () => {
    const error = refusal(() =>
      parseCommandInputs({ commands: [{ resource: 'storage', retries: 101 }] }),
    );
    expect(error.code).toBe('invalid_input');
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain('body.commands[0].action is required');
    expect(error.message).toContain('body.commands[0].retries must be an integer from 0 to 100');
    expect(error.details['fields']).toEqual([
      'body.commands[0].action',
      'body.commands[0].retries',
    ]);
    expect(refusal(() => parseNewPackage({ ttlMs: 'soon' })).message).toBe(
      'body.ttlMs must be an integer from 0 to 604,800,000',
    );
  });

  it('checks agent requests by their op', () => {
    expect(parseAgentRequest({ id: 1, op: 'lease' })).toMatchObject({
      id: 1,
      op: 'lease',
      waitMs: 0,
    });
    expect(
      refusal(() => parseAgentRequest({ id: 2, op: 'ack', result: { ok: true } })).message,
    ).toBe('request.ref is required');
    expect(refusal(() => parseAgentRequest({ id: 3, op: 'fly' })).message).toBe(
      'request.op must be lease, renew, ack or release',
    );
    const ref = { packageId: 'p', commandId: 'c', attemptId: 'a' };
    expect(
      refusal(() => parseAgentRequest({ id: 4, op: 'ack', ref, result: { ok: 'yes' } })).message,
    ).toBe('request.result.ok must be true or false');
  });

  it("takes a heartbeat as this node measures it, admission's measurement with it", async () => {
    const home = await testDir('spin-heartbeat-');
    const beat = measureHeartbeat({
      home,
      resources: ['storage', 'emulation'],
      intervalMs: 5000,
      running: 0,
      ...heartbeatAdmission(home, defaultAdmission),
    });
    expect(beat.admission).toMatchObject({ vms: [], policy: defaultAdmission });
    // The memory spin nodes shows is the memory admission counts (cgroup limits included).
    const { memoryMib } = measureNode();
    expect(beat.admission?.capacity.memoryMib).toBe(memoryMib);
    expect(beat.capacity.memoryBytes).toBe(memoryMib * 1024 * 1024);
    expect(parseHeartbeat(JSON.parse(JSON.stringify(beat)))).toEqual(beat);
    const vms = [{ id: 'x\u001b[2J', cpus: 1, memoryMib: 1, residentMib: 0 }];
    expect(
      refusal(() => parseHeartbeat({ ...beat, admission: { ...beat.admission, vms } })).message,
    ).toBe('heartbeat.admission.vms[0].id must be a VM id: an integer or a short name');
  });
});
