import { internalError } from '../core/errors.js';
import type { WireError } from '../core/errors.js';
import type { CommandSpec } from '../core/package.js';
import type { CommandStatus, Lease } from './broker-types.js';
import type { CommandRow } from './sqlite-schema.js';

/** The spec a stored command was added with. */
export function specOf(row: CommandRow): CommandSpec {
  return {
    id: row.id,
    resource: row.resource,
    action: row.action,
    params: JSON.parse(row.params) as Record<string, unknown>,
    needs: JSON.parse(row.needs) as string[],
    node: row.node,
    timeoutMs: row.timeout_ms,
    retries: row.retries,
  };
}

/** The lease a running row of the package named `packageName` stands for. */
export function leaseOf(row: CommandRow, packageName: string): Lease {
  if (row.attempt_id === null || row.lease_expires_at === null || row.deadline_at === null) {
    throw internalError(`command ${row.id} is not leased`);
  }
  return {
    packageId: row.package_id,
    packageName,
    commandId: row.id,
    attemptId: row.attempt_id,
    attempt: row.attempt,
    leaseExpiresAt: row.lease_expires_at,
    deadlineAt: row.deadline_at,
    spec: specOf(row),
  };
}

/** A stored command as status reports it. */
export function commandStatusOf(row: CommandRow): CommandStatus {
  const status: CommandStatus = {
    id: row.id,
    resource: row.resource,
    action: row.action,
    node: row.node,
    needs: JSON.parse(row.needs) as string[],
    state: row.state,
    attempt: row.attempt,
    updatedAt: row.updated_at,
  };
  if (row.reason !== null) status.reason = row.reason;
  if (row.error !== null) status.error = JSON.parse(row.error) as WireError;
  if (row.output !== null) status.output = JSON.parse(row.output);
  return status;
}
