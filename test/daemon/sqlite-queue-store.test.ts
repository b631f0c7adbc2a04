import { join } from 'node:path';
import { SqliteQueueStore } from '../../src/daemon/sqlite-queue-store.js';
import { tempHome } from './helpers.js';
import { queueStoreConformance } from './queue-store-conformance.js';

queueStoreConformance('SQLite', ({ clock, timings }) => {
  const home = tempHome();
  return {
    // The suite checks semantics, not fsync; the crash test runs the store with synchronous=FULL.
    open: () =>
      new SqliteQueueStore({
        path: join(home.dir, 'broker.db'),
        clock,
        timings,
        synchronous: 'normal',
      }),
    dispose: home.remove,
  };
});
