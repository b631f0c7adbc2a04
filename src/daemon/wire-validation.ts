import { SpinError } from '../core/errors.js';
import type { ErrorCode, WireError } from '../core/errors.js';
import type {
  AckResult,
  AttemptRef,
  CommandInput,
  NewPackageOptions,
} from '../broker/broker-types.js';

/**
 * Checks of what arrives over the daemon's socket, before anything reaches the store: a request
 * that fails them gets a 4xx naming the field, and changes nothing. Only the shape is checked
 * here; the store applies the broker's rules.
 */

type Json = Record<string, unknown>;

function fail(message: string): never {
  throw new SpinError('invalid_input', message);
}

/** The value as a JSON object, or a refusal naming `what`. */
export function asObject(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(`${what} must be a JSON object`);
  }
  return value as Json;
}

function optionalString(o: Json, key: string, what: string, max = 256): string | undefined {
  const value = o[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    fail(`${what}.${key} must be a non-empty string of at most ${String(max)} characters`);
  }
  return value;
}

function requiredString(o: Json, key: string, what: string, max = 256): string {
  const value = optionalString(o, key, what, max);
  if (value === undefined) fail(`${what}.${key} is required`);
  return value;
}

function optionalInt(o: Json, key: string, what: string, max: number): number | undefined {
  const value = o[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    fail(`${what}.${key} must be an integer from 0 to ${String(max)}`);
  }
  return value;
}

const day = 86_400_000;

/** The body of `POST /v1/packages`. */
export function parseNewPackage(body: unknown): NewPackageOptions {
  const o = asObject(body ?? {}, 'the request body');
  const name = optionalString(o, 'name', 'body');
  const ttlMs = optionalInt(o, 'ttlMs', 'body', 7 * day);
  return { ...(name === undefined ? {} : { name }), ...(ttlMs === undefined ? {} : { ttlMs }) };
}

/** The body of `POST /v1/packages/:id/commands`: `{commands: [...]}`, at most 10,000 of them. */
export function parseCommandInputs(body: unknown): CommandInput[] {
  const list = asObject(body, 'the request body')['commands'];
  if (!Array.isArray(list) || list.length === 0 || list.length > 10_000) {
    fail('body.commands must be an array of 1 to 10,000 commands');
  }
  return list.map((item: unknown, i) => {
    const what = `commands[${String(i)}]`;
    const o = asObject(item, what);
    const params = asObject(o['params'] ?? {}, `${what}.params`);
    const needs = o['needs'] ?? [];
    if (!Array.isArray(needs) || needs.some((n) => typeof n !== 'string')) {
      fail(`${what}.needs must be an array of command ids`);
    }
    const id = optionalString(o, 'id', what, 128);
    const command: CommandInput = {
      resource: requiredString(o, 'resource', what),
      action: requiredString(o, 'action', what),
      params,
      needs: needs as string[],
      node: optionalString(o, 'node', what) ?? 'local',
      timeoutMs: optionalInt(o, 'timeoutMs', what, day) ?? 10 * 60_000,
      retries: optionalInt(o, 'retries', what, 100) ?? 0,
    };
    return id === undefined ? command : { ...command, id };
  });
}

/** An attempt reference in a renew or ack. */
export function parseAttemptRef(value: unknown): AttemptRef {
  const o = asObject(value, 'ref');
  return {
    packageId: requiredString(o, 'packageId', 'ref'),
    commandId: requiredString(o, 'commandId', 'ref'),
    attemptId: requiredString(o, 'attemptId', 'ref'),
  };
}

/** The result in an ack: `{ok, output?, error?: {code, message, details?}, retryable?}`. */
export function parseAckResult(value: unknown): AckResult {
  const o = asObject(value, 'result');
  if (typeof o['ok'] !== 'boolean') fail('result.ok must be true or false');
  const result: AckResult = { ok: o['ok'] };
  if (o['output'] !== undefined) result.output = o['output'];
  if (o['retryable'] !== undefined) {
    if (typeof o['retryable'] !== 'boolean') fail('result.retryable must be true or false');
    result.retryable = o['retryable'];
  }
  if (o['error'] !== undefined) {
    const e = asObject(o['error'], 'result.error');
    const error: WireError = {
      code: requiredString(e, 'code', 'result.error', 64) as ErrorCode,
      message: requiredString(e, 'message', 'result.error', 64 * 1024),
    };
    if (e['details'] !== undefined) error.details = asObject(e['details'], 'result.error.details');
    result.error = error;
  }
  return result;
}

/** One request on an agent connection. */
export type AgentRequest =
  | { id: number; op: 'lease'; waitMs: number }
  | { id: number; op: 'renew'; ref: AttemptRef }
  | { id: number; op: 'ack'; ref: AttemptRef; result: AckResult; next: boolean }
  | { id: number; op: 'release'; ref: AttemptRef };

/** Parses one line of an agent connection; the id is returned even when the rest is bad. */
export function parseAgentRequest(value: unknown): AgentRequest {
  const o = asObject(value, 'the request');
  const id = o['id'];
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) fail('request.id must be an integer');
  switch (o['op']) {
    case 'lease':
      return { id, op: 'lease', waitMs: optionalInt(o, 'waitMs', 'request', 10 * 60_000) ?? 0 };
    case 'renew':
      return { id, op: 'renew', ref: parseAttemptRef(o['ref']) };
    case 'release':
      return { id, op: 'release', ref: parseAttemptRef(o['ref']) };
    case 'ack':
      return {
        id,
        op: 'ack',
        ref: parseAttemptRef(o['ref']),
        result: parseAckResult(o['result']),
        next: o['next'] === true,
      };
    default:
      return fail('request.op must be lease, renew, ack or release');
  }
}
