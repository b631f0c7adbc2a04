import { SpinError } from '../core/errors.js';

/**
 * Readers of action params. The loader validates params against each action's schema before
 * anything runs, but a command may arrive from a queue written by another version, so agents
 * check the fields they use again and throw `invalid_input` (never retryable) on a mismatch.
 */
export type Params = Record<string, unknown>;

function bad(field: string, expected: string): SpinError {
  return new SpinError('invalid_input', `Parameter '${field}' must be ${expected}.`, {
    details: { field },
  });
}

/** A required string param. */
export function stringParam(params: Params, field: string): string {
  const value = params[field];
  if (typeof value !== 'string') throw bad(field, 'a string');
  return value;
}

/** An optional string param. */
export function optionalStringParam(params: Params, field: string): string | undefined {
  return params[field] === undefined ? undefined : stringParam(params, field);
}

/** A required integer param within [min, max]. */
export function intParam(params: Params, field: string, min: number, max: number): number {
  const value = params[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw bad(field, `an integer from ${min} to ${max}`);
  }
  return value;
}

/** An optional boolean param, false when absent. */
export function flagParam(params: Params, field: string): boolean {
  const value = params[field];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw bad(field, 'true or false');
  return value;
}

/** A required object param. */
export function objectParam(params: Params, field: string): Params {
  const value = params[field];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(field, 'an object');
  }
  return value as Params;
}
