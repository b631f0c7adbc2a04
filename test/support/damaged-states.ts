import type { StateData } from '../../src/core/state-types.js';

/** A sound state: one package `demo` whose one command `volume` succeeded. */
export function soundState(): StateData {
  return {
    format: 'spin-state',
    version: 1,
    lineage: '6f7c1d2e-0a4b-4c1d-8e2f-3a5b6c7d8e9f',
    serial: 3,
    packages: {
      demo: {
        file: 'demo.spin.yaml',
        appliedAt: '2026-11-22T00:00:00.000Z',
        commands: {
          volume: {
            resource: 'storage',
            action: 'add_volume',
            node: 'local',
            params: { path: 'test' },
            needs: [],
            specHash: 'abc',
            status: 'succeeded',
            attempts: 1,
            output: 'volume test created',
            serial: 3,
            finishedAt: '2026-11-22T00:00:01.000Z',
          },
        },
      },
    },
  };
}

/** A damaged state file: its text and the field its refusal must name ('' when none can be). */
export interface DamagedState {
  name: string;
  text: string;
  field: string;
}

const withPackages = (packages: unknown): string => JSON.stringify({ ...soundState(), packages });

const { volume } = soundState().packages['demo']?.commands ?? {};
const { status: _status, ...withoutStatus } = volume ?? {};

/**
 * Damaged state files, as a crash, a disk error or a hand edit leaves them. spin must refuse
 * each (exit 3, naming the file and the field) rather than read it or overwrite it.
 */
export const damagedStates: readonly DamagedState[] = [
  {
    name: 'a command record that is null',
    text: withPackages({ p: { file: 'f', appliedAt: 'a', commands: { v: null } } }),
    field: 'packages.p.commands.v',
  },
  { name: 'packages that are an array', text: withPackages([]), field: 'packages' },
  { name: 'a package record that is null', text: withPackages({ r3: null }), field: 'packages.r3' },
  {
    name: 'commands that are a string',
    text: withPackages({ p: { file: 'f', appliedAt: 'a', commands: 'abc' } }),
    field: 'packages.p.commands',
  },
  { name: 'text that is not JSON', text: '{"format": "spin-state", "serial": ', field: '' },
  {
    name: 'a wrong format',
    text: JSON.stringify({ ...soundState(), format: 'spin-stat' }),
    field: 'format',
  },
  {
    name: 'a negative serial',
    text: JSON.stringify({ ...soundState(), serial: -1 }),
    field: 'serial',
  },
  {
    name: 'a command record missing status',
    text: withPackages({
      demo: { ...soundState().packages['demo'], commands: { volume: withoutStatus } },
    }),
    field: 'packages.demo.commands.volume.status',
  },
];
