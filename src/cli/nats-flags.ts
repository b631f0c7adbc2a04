import * as Flags from '@oclif/core/flags';
import { durationToMs } from '../core/duration.js';
import { SpinError } from '../core/errors.js';
import type { NatsOptions } from '../daemon/nats-connection.js';

/**
 * The flags that reach a fleet over NATS, shared by the daemon, agents and the CLI. Secrets may
 * come from the environment instead of the command line, where `ps` would show them.
 */
export const natsFlags = {
  nats: Flags.string({
    description:
      'reach the fleet over NATS at this URL (nats://host:4222; several, comma-separated)',
    env: 'SPIN_NATS',
    helpGroup: 'NATS',
  }),
  fleet: Flags.string({
    description: "the fleet's name: its NATS subjects are spin.<fleet>.…",
    default: 'default',
    env: 'SPIN_FLEET',
    helpGroup: 'NATS',
  }),
  'nats-creds': Flags.string({
    description: 'a NATS credentials file (JWT + nkey seed)',
    helpGroup: 'NATS',
  }),
  'nats-user': Flags.string({ description: 'NATS user name', helpGroup: 'NATS' }),
  'nats-password': Flags.string({
    description: 'NATS password (or SPIN_NATS_PASSWORD)',
    env: 'SPIN_NATS_PASSWORD',
    helpGroup: 'NATS',
  }),
  'nats-token': Flags.string({
    description: 'NATS token (or SPIN_NATS_TOKEN)',
    env: 'SPIN_NATS_TOKEN',
    helpGroup: 'NATS',
  }),
  'nats-ca': Flags.string({
    description: 'TLS: CA file that signed the server',
    helpGroup: 'NATS',
  }),
  'nats-cert': Flags.string({ description: 'TLS: client certificate file', helpGroup: 'NATS' }),
  'nats-key': Flags.string({ description: 'TLS: client key file', helpGroup: 'NATS' }),
};

type NatsFlagValues = {
  nats?: string | undefined;
  fleet: string;
  'nats-creds'?: string | undefined;
  'nats-user'?: string | undefined;
  'nats-password'?: string | undefined;
  'nats-token'?: string | undefined;
  'nats-ca'?: string | undefined;
  'nats-cert'?: string | undefined;
  'nats-key'?: string | undefined;
};

/** The NATS options the flags give, or undefined without `--nats`. */
export function natsOptionsOf(flags: NatsFlagValues): NatsOptions | undefined {
  if (flags.nats === undefined) return undefined;
  if ((flags['nats-user'] === undefined) !== (flags['nats-password'] === undefined)) {
    throw new SpinError('usage', '--nats-user and --nats-password go together');
  }
  const options: NatsOptions = { url: flags.nats, fleet: flags.fleet };
  if (flags['nats-creds'] !== undefined) options.creds = flags['nats-creds'];
  if (flags['nats-user'] !== undefined) options.user = flags['nats-user'];
  if (flags['nats-password'] !== undefined) options.password = flags['nats-password'];
  if (flags['nats-token'] !== undefined) options.token = flags['nats-token'];
  const tls: NonNullable<NatsOptions['tls']> = {};
  if (flags['nats-ca'] !== undefined) tls.ca = flags['nats-ca'];
  if (flags['nats-cert'] !== undefined) tls.cert = flags['nats-cert'];
  if (flags['nats-key'] !== undefined) tls.key = flags['nats-key'];
  if (Object.keys(tls).length > 0) options.tls = tls;
  return options;
}

/**
 * The flags that say how to use this machine's state and agents (`--state`, the admission
 * flags): with `--nats` the coordinator plans against its own state, and it and each node's
 * agent have their own admission, so giving one of them is a usage error rather than silently
 * ignored. (`--lock-timeout` goes to the coordinator, for its state's lock.) `given` is every
 * flag named on the command line (oclif's `raw`).
 */
export function refuseLocalFlags(given: readonly { type: string; flag?: string }[]): void {
  const local = new Set(['state', 'cpu-overcommit', 'memory-overcommit', 'reserve-memory']);
  const named = [
    ...new Set(
      given.flatMap((t) =>
        t.type === 'flag' && local.has(t.flag ?? '') ? [`--${t.flag ?? ''}`] : [],
      ),
    ),
  ];
  if (named.length === 0) return;
  throw new SpinError(
    'usage',
    `${named.join(', ')} ${named.length === 1 ? 'is' : 'are'} for a state and agents on this machine, not with --nats: the coordinator plans against its own state`,
    {
      suggestions: [
        'Give the admission flags (--cpu-overcommit, --memory-overcommit, --reserve-memory) to the coordinator (spin daemon start) and to each node (spin agent).',
      ],
    },
  );
}

/**
 * The flags again as arguments, for `spin daemon start` to pass to the daemon it launches;
 * secrets go through the environment (`env`), not the argument list.
 */
export function natsArgs(flags: NatsFlagValues): { args: string[]; env: Record<string, string> } {
  const args: string[] = [];
  const env: Record<string, string> = {};
  if (flags.nats === undefined) return { args, env };
  args.push('--nats', flags.nats, '--fleet', flags.fleet);
  for (const name of ['nats-creds', 'nats-user', 'nats-ca', 'nats-cert', 'nats-key'] as const) {
    const value = flags[name];
    if (value !== undefined) args.push(`--${name}`, value);
  }
  if (flags['nats-password'] !== undefined) env['SPIN_NATS_PASSWORD'] = flags['nats-password'];
  if (flags['nats-token'] !== undefined) env['SPIN_NATS_TOKEN'] = flags['nats-token'];
  return { args, env };
}

/** A duration flag in milliseconds (`500ms`, `5s`, `2m`, or whole seconds); else a usage error. */
export function durationFlagMs(flag: string, value: string): number {
  const ms = durationToMs(/^\d+$/.test(value) ? Number(value) : value);
  if (ms === undefined || ms <= 0) {
    throw new SpinError('usage', `--${flag}: '${value}' is not a duration like 5s or 2m`);
  }
  return ms;
}
