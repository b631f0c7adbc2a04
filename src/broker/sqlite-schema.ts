import type Database from 'better-sqlite3';
import { SpinError } from '../core/errors.js';
import type { CommandState, PackageState } from './broker-types.js';

/**
 * The SQLite file of the queue store: plain tables, changed in transactions.
 * - `packages`: one row a package, with counters of its commands (unfinished, failed) so that its
 *   state follows from one row, and for an owned package the process it belongs to (`owner_*`).
 * - `commands`: one row a command. `seq` is its place in its queue, assigned at enqueue from one
 *   counter, so enqueue order is global and survives restarts; `pending_needs` counts needs not
 *   yet succeeded.
 * - `deps`: who needs whom, to release or skip dependents without reading the whole package.
 * - `package_meta`: what the creator keeps with a package (for a reconcile, each command's needs:
 *   as long as the package). A table of its own, so that the counters of `packages`, updated on
 *   every ack, sit in a short row: SQLite rewrites a whole row on update.
 * Two partial indexes serve the hot path: the ready commands of a queue in order, and the one
 * running command of a queue.
 */
export const schemaVersion = 5;

const ddl = `
CREATE TABLE IF NOT EXISTS packages (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  ttl_ms INTEGER NOT NULL,
  enqueued_at INTEGER,
  finished_at INTEGER,
  commands INTEGER NOT NULL DEFAULT 0,
  unfinished INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  started INTEGER NOT NULL DEFAULT 0,
  owner_pid INTEGER,
  owner_host TEXT,
  owner_start INTEGER,
  owner_command TEXT
);
CREATE TABLE IF NOT EXISTS package_meta (
  package_id TEXT PRIMARY KEY,
  meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
  package_id TEXT NOT NULL,
  id TEXT NOT NULL,
  position INTEGER NOT NULL,
  seq INTEGER,
  node TEXT NOT NULL,
  resource TEXT NOT NULL,
  action TEXT NOT NULL,
  params TEXT NOT NULL,
  needs TEXT NOT NULL,
  timeout_ms INTEGER NOT NULL,
  retries INTEGER NOT NULL,
  state TEXT NOT NULL,
  pending_needs INTEGER NOT NULL DEFAULT 0,
  attempt INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  attempt_id TEXT,
  holder TEXT,
  lease_expires_at INTEGER,
  deadline_at INTEGER,
  available_at INTEGER NOT NULL DEFAULT 0,
  reason TEXT,
  error TEXT,
  output TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (package_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deps (
  package_id TEXT NOT NULL,
  needs_id TEXT NOT NULL,
  command_id TEXT NOT NULL,
  PRIMARY KEY (package_id, needs_id, command_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS commands_ready ON commands (node, resource, seq) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS commands_running ON commands (node, resource) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS packages_staged ON packages (created_at) WHERE state = 'staged';
CREATE INDEX IF NOT EXISTS packages_owned ON packages (name) WHERE owner_pid IS NOT NULL
  AND state IN ('staged', 'enqueued', 'running');
CREATE INDEX IF NOT EXISTS packages_finished ON packages (finished_at) WHERE finished_at IS NOT NULL;
`;

/** A row of `packages`. */
export interface PackageRow {
  id: string;
  name: string;
  state: PackageState;
  created_at: number;
  ttl_ms: number;
  enqueued_at: number | null;
  finished_at: number | null;
  commands: number;
  unfinished: number;
  failed: number;
  started: number;
  owner_pid: number | null;
  owner_host: string | null;
  owner_start: number | null;
  owner_command: string | null;
  /** From `package_meta`, where a statement joins it; never on the path of a lease or ack. */
  meta?: string | null;
}

/** A row of `commands`; JSON columns hold text. */
export interface CommandRow {
  package_id: string;
  id: string;
  position: number;
  seq: number | null;
  node: string;
  resource: string;
  action: string;
  params: string;
  needs: string;
  timeout_ms: number;
  retries: number;
  state: CommandState;
  pending_needs: number;
  attempt: number;
  failures: number;
  attempt_id: string | null;
  holder: string | null;
  lease_expires_at: number | null;
  deadline_at: number | null;
  available_at: number;
  reason: string | null;
  error: string | null;
  output: string | null;
  updated_at: number;
}

/**
 * Creates the tables (idempotent), brings a store of an earlier spin to this schema, and refuses
 * one written by a newer spin. Run in a write transaction.
 * - Schema 1 had these tables; schema 2 added a journal of changes not yet folded into them,
 *   which its close folded. A schema-2 file whose journal still holds changes (its broker was
 *   killed) is refused rather than opened without them.
 * - Schemas 3 and 4 added the owner columns and `meta` to `packages`; schema 5 moved `meta` to
 *   `package_meta`.
 */
export function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  const found = db.prepare<[], string>(`SELECT value FROM meta WHERE key = 'schema'`).pluck().get();
  const version = found === undefined ? schemaVersion : Number(found);
  if (version > schemaVersion) {
    throw new SpinError(
      'state_conflict',
      `The broker store ${db.name} was written by a newer spin (store schema ${String(version)}; this spin knows up to ${String(schemaVersion)}).`,
      {
        details: { store: db.name, schema: version, known: schemaVersion },
        suggestions: ['Run the spin that wrote it, or upgrade this one.', moveAside(db.name)],
      },
    );
  }
  if (version === 2) dropJournal(db);
  // Columns added since schema 1, added to a store that lacks them before the indexes need them.
  const tables = db.prepare<[], string>(`SELECT name FROM sqlite_master WHERE type = 'table'`);
  if (tables.pluck().all().includes('packages')) {
    const has = new Set(
      db
        .prepare<[], { name: string }>('PRAGMA table_info(packages)')
        .all()
        .map((c) => c.name),
    );
    for (const [column, type] of ownerColumns) {
      if (!has.has(column)) db.exec(`ALTER TABLE packages ADD COLUMN ${column} ${type}`);
    }
    if (has.has('meta')) moveMeta(db);
  }
  db.exec(ddl);
  db.prepare(
    `INSERT INTO meta (key, value) VALUES ('schema', ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  ).run(String(schemaVersion));
}

const ownerColumns = [
  ['owner_pid', 'INTEGER'],
  ['owner_host', 'TEXT'],
  ['owner_start', 'INTEGER'],
  ['owner_command', 'TEXT'],
] as const;

/** Schema 4 kept `meta` in `packages`; schema 5 in a table of its own. */
function moveMeta(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS package_meta (
    package_id TEXT PRIMARY KEY,
    meta TEXT NOT NULL
  );
  INSERT INTO package_meta (package_id, meta) SELECT id, meta FROM packages WHERE meta IS NOT NULL;
  ALTER TABLE packages DROP COLUMN meta`);
}

function dropJournal(db: Database.Database): void {
  const pending = db.prepare<[], number>('SELECT count(*) FROM journal').pluck().get() ?? 0;
  if (pending > 0) {
    throw new SpinError(
      'state_conflict',
      `The broker store ${db.name} holds ${String(pending)} changes that the spin which wrote it never folded in (it was stopped abruptly).`,
      {
        details: { store: db.name, pending },
        suggestions: [
          'Start and stop that spin once (spin daemon start, then spin daemon stop) to fold them in.',
          moveAside(db.name),
        ],
      },
    );
  }
  db.exec(`DROP TABLE journal; DELETE FROM meta WHERE key = 'compacted_through';
    DROP INDEX IF EXISTS packages_staged`);
}

function moveAside(file: string): string {
  return `To start over with no queued commands, stop every spin using this home and move ${file} aside.`;
}

/** The columns of `commands` that change after a command is added, in a fixed order. */
export const mutableCommandColumns = [
  'seq',
  'state',
  'pending_needs',
  'attempt',
  'failures',
  'attempt_id',
  'holder',
  'lease_expires_at',
  'deadline_at',
  'available_at',
  'reason',
  'error',
  'output',
  'updated_at',
] as const satisfies readonly (keyof CommandRow)[];

/** The columns of `packages` that change after it is created. */
export const mutablePackageColumns = [
  'state',
  'enqueued_at',
  'finished_at',
  'commands',
  'unfinished',
  'failed',
  'started',
] as const satisfies readonly (keyof PackageRow)[];

/** The columns of `packages`. */
const packageColumns = [
  'id',
  'name',
  'created_at',
  'ttl_ms',
  ...mutablePackageColumns,
  'owner_pid',
  'owner_host',
  'owner_start',
  'owner_command',
] as const satisfies readonly (keyof PackageRow)[];

/** Prepares the statements of the store, once per connection. */
export function prepareStatements(db: Database.Database) {
  const set = (columns: readonly string[]): string => columns.map((c) => `${c} = ?`).join(', ');
  const pkg = packageColumns.join(', ');
  return {
    getMeta: db.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck(),
    setMeta: db.prepare<[string, string]>(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    package: db.prepare<[string], PackageRow>(`SELECT ${pkg} FROM packages WHERE id = ?`),
    packageMeta: db
      .prepare<[string], string>('SELECT meta FROM package_meta WHERE package_id = ?')
      .pluck(),
    insertPackage: db.prepare<[PackageRow]>(
      `INSERT INTO packages (id, name, state, created_at, ttl_ms, owner_pid, owner_host,
         owner_start, owner_command)
       VALUES (@id, @name, @state, @created_at, @ttl_ms, @owner_pid, @owner_host, @owner_start,
         @owner_command)`,
    ),
    insertPackageMeta: db.prepare<[string, string]>(
      'INSERT INTO package_meta (package_id, meta) VALUES (?, ?)',
    ),
    deletePackageMeta: db.prepare<[string]>('DELETE FROM package_meta WHERE package_id = ?'),
    unfinishedOwned: db.prepare<[], PackageRow>(
      `SELECT p.*, m.meta FROM packages p LEFT JOIN package_meta m ON m.package_id = p.id
       WHERE p.owner_pid IS NOT NULL AND p.state IN ('staged', 'enqueued', 'running')
       ORDER BY p.created_at`,
    ),
    unfinishedOwnedNamed: db.prepare<[string], PackageRow>(
      `SELECT ${pkg} FROM packages WHERE owner_pid IS NOT NULL AND name = ?
       AND state IN ('enqueued', 'running') LIMIT 1`,
    ),
    updatePackage: db.prepare(`UPDATE packages SET ${set(mutablePackageColumns)} WHERE id = ?`),
    deletePackage: db.prepare<[string]>('DELETE FROM packages WHERE id = ?'),
    deleteCommands: db.prepare<[string]>('DELETE FROM commands WHERE package_id = ?'),
    deleteDeps: db.prepare<[string]>('DELETE FROM deps WHERE package_id = ?'),
    listPackages: db.prepare<[number], PackageRow>(
      `SELECT ${pkg} FROM packages ORDER BY created_at DESC, rowid DESC LIMIT ?`,
    ),
    expiredPackages: db.prepare<[number], PackageRow>(
      `SELECT ${pkg} FROM packages WHERE state = 'staged' AND created_at + ttl_ms <= ?`,
    ),
    finishedBefore: db.prepare<[number], PackageRow>(
      `SELECT ${pkg} FROM packages WHERE finished_at IS NOT NULL AND finished_at <= ?`,
    ),
    command: db.prepare<[string, string], CommandRow>(
      'SELECT * FROM commands WHERE package_id = ? AND id = ?',
    ),
    commandIds: db
      .prepare<[string], string>('SELECT id FROM commands WHERE package_id = ?')
      .pluck(),
    packageCommands: db.prepare<[string], CommandRow>(
      'SELECT * FROM commands WHERE package_id = ? ORDER BY position',
    ),
    insertCommand: db.prepare(
      `INSERT INTO commands (package_id, id, position, node, resource, action, params, needs,
         timeout_ms, retries, state, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'staged', ?)`,
    ),
    updateCommand: db.prepare(
      `UPDATE commands SET ${set(mutableCommandColumns)} WHERE package_id = ? AND id = ?`,
    ),
    insertDep: db.prepare<[string, string, string]>(
      'INSERT OR IGNORE INTO deps (package_id, needs_id, command_id) VALUES (?, ?, ?)',
    ),
    dependents: db
      .prepare<[string, string], string>(
        'SELECT command_id FROM deps WHERE package_id = ? AND needs_id = ?',
      )
      .pluck(),
    headOfQueue: db.prepare<[string, string], CommandRow>(
      `SELECT * FROM commands WHERE node = ? AND resource = ? AND state = 'ready'
       ORDER BY seq LIMIT 1`,
    ),
    runningInQueue: db.prepare<[string, string], CommandRow>(
      `SELECT * FROM commands WHERE node = ? AND resource = ? AND state = 'running' LIMIT 1`,
    ),
    readyElsewhere: db.prepare<[string], CommandRow>(
      `SELECT * FROM commands WHERE state = 'ready' AND node != ? ORDER BY seq LIMIT 10000`,
    ),
    running: db.prepare<[], CommandRow>(
      `SELECT * FROM commands WHERE state = 'running' ORDER BY seq`,
    ),
  };
}

/** The statements of one connection. */
export type Statements = ReturnType<typeof prepareStatements>;
