import type { execa as Execa } from 'execa';

let loading: Promise<typeof Execa> | undefined;

/**
 * execa, imported on first use. Importing it costs ~170 ms, more than the rest of a plan of a
 * thousand commands; plans, observations and most storage actions never run a program.
 */
export function loadExeca(): Promise<typeof Execa> {
  loading ??= import('execa').then((m) => m.execa);
  return loading;
}
