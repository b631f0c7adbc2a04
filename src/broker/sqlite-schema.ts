import { SpinError } from '../core/errors.js';
import type Database from 'better-sqlite3';
import type { CommandState, PackageState } from './broker-types.js';

/**
 * The SQLite file of the queue store: a snapshot of its tables (packages, commands, needs) and a
 * journal of the changes since, one row per commit holding that commit's row patches in order.
 * A commit appends one journal row, whatever it changed; every connection replays the rows it
 * has not seen before it reads or writes, and a snapshot (`compacted_through`) folds the journal
 * back into the tables now and then. A command's place in its queue is `seq`, assigned from one
 * counter at enqueue, so enqueue order is global and survives restarts. `pending_needs` counts
 * needs not yet succeeded; the package row keeps counters of its commands.
 */
export const schemaVersion = 2;

const ddl = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
  started INTEGER NOT NULL DEFAULT 0
);
DROP INDEX IF EXISTS packages_staged;
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
  active INTEGER,
  pending_needs INTEGER NOT NULL DEFAULT 0,
  dependents INTEGER NOT NULL DEFAULT 0,
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
DROP INDEX IF EXISTS commands_queue;
DROP INDEX IF EXISTS commands_running;
DROP INDEX IF EXISTS commands_seq;
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, patches TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deps (
  package_id TEXT NOT NULL,
  needs_id TEXT NOT NULL,
  command_id TEXT NOT NULL,
  PRIMARY KEY (package_id, needs_id, command_id)
) WITHOUT ROWID;
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
  /** 1 from enqueue until the command finishes, else null: membership of the queue index. */
  active: number | null;
  pending_needs: number;
  /** How many commands need this one; 0 spares the lookup of dependents on every ack. */
  dependents: number;
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

/** Creates the tables (idempotent) and refuses a store written by a newer spin. */
export function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  const found = db.prepare<[], string>(`SELECT value FROM meta WHERE key = 'schema'`).pluck().get();
  if (found !== undefined && Number(found) > schemaVersion) {
    throw new SpinError(
      'state_conflict',
      `The broker store ${db.name} was written by a newer spin (store schema ${found}; this spin knows up to ${String(schemaVersion)}).`,
      {
        details: { store: db.name, schema: Number(found), known: schemaVersion },
        suggestions: [
          'Run the spin that wrote it, or upgrade this one.',
          `To start over with no queued commands, stop every spin using this home and move ${db.name} aside.`,
        ],
      },
    );
  }
  db.exec(ddl);
  db.prepare(
    `INSERT INTO meta (key, value) VALUES ('schema', ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  ).run(String(schemaVersion));
}

/** Every column of `packages`, in the order the snapshot binds them. */
const packageColumns = [
  'id',
  'name',
  'state',
  'created_at',
  'ttl_ms',
  'enqueued_at',
  'finished_at',
  'commands',
  'unfinished',
  'failed',
  'started',
] as const satisfies readonly (keyof PackageRow)[];

/** Every column of `commands`, in the order the snapshot binds them. */
const commandColumns = [
  'package_id',
  'id',
  'position',
  'seq',
  'node',
  'resource',
  'action',
  'params',
  'needs',
  'timeout_ms',
  'retries',
  'state',
  'active',
  'pending_needs',
  'dependents',
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

/** Prepares the statements of the snapshot and the journal, once per connection. */
export function prepareStatements(db: Database.Database) {
  return {
    dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
    getMeta: db.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck(),
    setMeta: db.prepare<[string, string]>(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    loadPackages: db.prepare<[], PackageRow>('SELECT * FROM packages ORDER BY rowid'),
    loadCommands: db.prepare<[], CommandRow>(
      'SELECT * FROM commands ORDER BY seq NULLS FIRST, package_id, position',
    ),
    loadDeps: db.prepare<[], { package_id: string; needs_id: string; command_id: string }>(
      'SELECT * FROM deps',
    ),
    journalSince: db.prepare<[number], { seq: number; patches: string }>(
      'SELECT seq, patches FROM journal WHERE seq > ? ORDER BY seq',
    ),
    appendJournal: db.prepare<[number, string]>('INSERT INTO journal (seq, patches) VALUES (?, ?)'),
    trimJournal: db.prepare<[number]>('DELETE FROM journal WHERE seq <= ?'),
    upsertPackage: db.prepare(upsert('packages', packageColumns, ['id'])),
    upsertCommand: db.prepare(upsert('commands', commandColumns, ['package_id', 'id'])),
    insertDep: db.prepare<[string, string, string]>(
      'INSERT OR IGNORE INTO deps (package_id, needs_id, command_id) VALUES (?, ?, ?)',
    ),
    deletePackage: db.prepare<[string]>('DELETE FROM packages WHERE id = ?'),
    deleteCommands: db.prepare<[string]>('DELETE FROM commands WHERE package_id = ?'),
    deleteDeps: db.prepare<[string]>('DELETE FROM deps WHERE package_id = ?'),
  };
}

/**
 * An insert that updates the row in place (keeping its rowid) when the key exists. Its values are
 * positional (`packageValues`, `commandValues`): binding them by name costs about twice as much.
 */
function upsert(table: string, columns: readonly string[], key: readonly string[]): string {
  const updates = columns.filter((c) => !key.includes(c)).map((c) => `${c} = excluded.${c}`);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
    ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
}

/** The values of a package row in the order of `upsertPackage`. */
export function packageValues(row: PackageRow): unknown[] {
  return packageColumns.map((column) => row[column]);
}

/** The values of a command row in the order of `upsertCommand`. */
export function commandValues(row: CommandRow): unknown[] {
  return commandColumns.map((column) => row[column]);
}

/** The prepared statements of one connection. */
export type Statements = ReturnType<typeof prepareStatements>;
