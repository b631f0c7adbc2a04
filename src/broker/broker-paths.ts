import { join } from 'node:path';

/** Where the broker keeps its files inside one `SPIN_HOME`. */
export interface BrokerPaths {
  home: string;
  /** The daemon's HTTP API (mode 0600; the home is 0700). */
  socket: string;
  /** Holds the pid of the broker that owns this home: the daemon or an embedded broker. */
  pidFile: string;
  /** Locked, by the kernel, for as long as a broker owns this home (see `acquireBrokerLock`). */
  lockFile: string;
  /** The daemon's log when started in the background. */
  logFile: string;
  /** The SQLite queue store. */
  database: string;
  /** One JSON object per transition. */
  auditLog: string;
  /** The bearer token of the optional TCP listener. */
  tokenFile: string;
}

/** The broker's files under `home`. */
export function brokerPaths(home: string): BrokerPaths {
  return {
    home,
    socket: join(home, 'spind.sock'),
    pidFile: join(home, 'spind.pid'),
    lockFile: join(home, 'broker.lock'),
    logFile: join(home, 'spind.log'),
    database: join(home, 'broker.db'),
    auditLog: join(home, 'audit.ndjson'),
    tokenFile: join(home, 'spind.token'),
  };
}
