/**
 * The one place for spin's defaults: every value used where a package, a flag or a request says
 * nothing. A default written anywhere else is a second truth that will drift from this one.
 */
export const defaults = {
  /** A command's bounds where neither it nor its package's `defaults:` set them. */
  command: {
    timeoutMs: 10 * 60_000,
    retries: 0,
    node: 'local',
  },
  /** The bound of an undo (remove, delete, stop) that prune and destroy run. */
  undoTimeoutMs: 5 * 60_000,
  /** How long an agent's lease lasts unless renewed. */
  leaseMs: 30_000,
  /**
   * What a VM start may take of the node (see agents/emulation/admission.ts). CPUs are
   * overcommitted 4:1: an idle vCPU costs little, and busy ones slow each other down rather than
   * fail. Memory is not overcommitted: a guest given memory the host lacks is killed by the
   * host's OOM killer. No memory is held back for the host unless asked.
   */
  admission: {
    cpuOvercommit: 4,
    memoryOvercommit: 1,
    reserveMemoryMib: 0,
  },
  /** A VM's `restart` block where the start says nothing: Nomad's defaults for services. */
  restart: {
    policy: 'on-failure',
    attempts: 2,
    intervalMs: 30 * 60_000,
    delayMs: 15_000,
    maxDelayMs: 5 * 60_000,
    mode: 'fail',
  },
  /** A VM's `health` block, for what it leaves out. */
  health: { intervalMs: 10_000, timeoutMs: 2000, failures: 3, graceMs: 0 },
} as const;
