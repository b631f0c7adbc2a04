import type { ExitCause } from '../agents/emulation/vm-exit.js';
import type { SupervisionView } from '../reconcile/vm-supervision-view.js';

/** How each end of a VM reads in `spin status`. */
export const exitCauseWords: Record<ExitCause, string> = {
  poweroff: 'the guest powered off',
  panic: 'the guest panicked',
  'host-stop': 'stopped outside spin',
  died: 'qemu died (killed or crashed)',
  unhealthy: 'its health check failed',
  'start-failed': 'a restart could not launch it',
  vanished: 'found not running by a new supervisor',
};

/**
 * The supervision of a VM as the end of its `spin status` line: who supervises it (said only
 * when nobody does), since when it runs, how often it was restarted and why it last ended.
 */
export function supervisionText(view: SupervisionView | undefined): string {
  if (view === undefined) return '';
  const parts: string[] = [];
  if (view.supervisor === undefined) parts.push('not supervised: no daemon');
  else if (!view.supervised) {
    const { role, pid } = view.supervisor;
    parts.push(`not supervised: its supervisor (${role}, pid ${String(pid)}) is gone`);
  }
  if (view.upSince !== undefined) parts.push(`up since ${view.upSince}`);
  if (view.state === 'backoff' && view.nextRestartAt !== undefined)
    parts.push(`restarting at ${view.nextRestartAt}`);
  if (view.restarts > 0 || view.lastExit !== undefined)
    parts.push(`restarts ${String(view.restarts)}`);
  if (view.lastExit !== undefined) {
    const { cause, detail, at } = view.lastExit;
    const why = detail === undefined || cause === 'panic' ? '' : ` (${detail})`;
    parts.push(`last exit: ${exitCauseWords[cause]}${why} at ${at}`);
  }
  return parts.join(', ');
}
