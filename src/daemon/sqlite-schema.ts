import type Database from 'better-sqlite3';
import type { CommandState, PackageState } from './broker-types.js';

/**
 * The tables of the SQLite queue store and its prepared statements. A command's place in its
 * queue is `seq`, assigned from one counter at enqueue, so enqueue order is global and survives
 * restarts. The queue index holds only unfinished commands (`active = 1`) and leaves state out,
 * so a lease (ready → running) rewrites no index page of it: fewer pages per durable commit.
 * `pending_needs` counts needs not yet succeeded, so releasing dependents costs one
 * indexed lookup per ack; the package row keeps counters for the same reason.
 */
export const schemaVersion = 1;

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
CREATE INDEX IF NOT EXISTS packages_staged ON packages (created_at) WHERE state = 'staged';
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
CREATE INDEX IF NOT EXISTS commands_queue ON commands (node, resource, seq) WHERE active = 1;
CREATE INDEX IF NOT EXISTS commands_running ON commands (node, resource) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS commands_seq ON commands (seq);
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

type Key = { package_id: string; id: string };

/** Creates the tables (idempotent) and refuses a store written by a newer spin. */
export function migrate(db: Database.Database): void {
  db.exec(ddl);
  const row = db
    .prepare<[], { value: string }>(`SELECT value FROM meta WHERE key = 'schema'`)
    .get();
  if (row === undefined) {
    db.prepare(`INSERT INTO meta (key, value) VALUES ('schema', ?)`).run(String(schemaVersion));
  } else if (Number(row.value) > schemaVersion) {
    throw new Error(`the store has schema ${row.value}; this spin knows ${String(schemaVersion)}`);
  }
}

/** Prepares every statement the store runs, once. */
export function prepareStatements(db: Database.Database) {
  return {
    insertPackage: db.prepare<[string, string, number, number]>(
      `INSERT INTO packages (id, name, state, created_at, ttl_ms) VALUES (?, ?, 'staged', ?, ?)`,
    ),
    getPackage: db.prepare<[string], PackageRow>(`SELECT * FROM packages WHERE id = ?`),
    listPackages: db.prepare<[number], PackageRow>(
      `SELECT * FROM packages ORDER BY created_at DESC, rowid DESC LIMIT ?`,
    ),
    updatePackage: db.prepare<
      Pick<PackageRow, 'id' | 'state' | 'unfinished' | 'failed' | 'started' | 'commands'> & {
        enqueued_at: number | null;
        finished_at: number | null;
      }
    >(
      `UPDATE packages SET state = @state, unfinished = @unfinished, failed = @failed,
         started = @started, commands = @commands, enqueued_at = @enqueued_at,
         finished_at = @finished_at WHERE id = @id`,
    ),
    expiredPackages: db.prepare<[number], PackageRow>(
      `SELECT * FROM packages WHERE state = 'staged' AND created_at + ttl_ms <= ?`,
    ),
    finishedBefore: db.prepare<[number], PackageRow>(
      `SELECT * FROM packages WHERE finished_at IS NOT NULL AND finished_at <= ? LIMIT 1000`,
    ),
    deletePackage: db.prepare<[string]>(`DELETE FROM packages WHERE id = ?`),
    deleteCommands: db.prepare<[string]>(`DELETE FROM commands WHERE package_id = ?`),
    deleteDeps: db.prepare<[string]>(`DELETE FROM deps WHERE package_id = ?`),
    insertCommand: db.prepare<
      Pick<
        CommandRow,
        | 'package_id'
        | 'id'
        | 'position'
        | 'node'
        | 'resource'
        | 'action'
        | 'params'
        | 'needs'
        | 'timeout_ms'
        | 'retries'
        | 'updated_at'
      >
    >(
      `INSERT INTO commands (package_id, id, position, node, resource, action, params, needs,
         timeout_ms, retries, state, updated_at)
       VALUES (@package_id, @id, @position, @node, @resource, @action, @params, @needs,
         @timeout_ms, @retries, 'staged', @updated_at)`,
    ),
    getCommand: db.prepare<Key, CommandRow>(
      `SELECT * FROM commands WHERE package_id = @package_id AND id = @id`,
    ),
    packageCommands: db.prepare<[string], CommandRow>(
      `SELECT * FROM commands WHERE package_id = ? ORDER BY position`,
    ),
    packageCommandIds: db.prepare<[string], { id: string }>(
      `SELECT id FROM commands WHERE package_id = ?`,
    ),
    maxSeq: db.prepare<[], { seq: number | null }>(`SELECT max(seq) AS seq FROM commands`),
    enqueueCommand: db.prepare<
      Key & {
        seq: number;
        state: CommandState;
        pending_needs: number;
        dependents: number;
        updated_at: number;
      }
    >(
      `UPDATE commands SET seq = @seq, state = @state, active = 1, pending_needs = @pending_needs,
         dependents = @dependents, updated_at = @updated_at
       WHERE package_id = @package_id AND id = @id`,
    ),
    insertDep: db.prepare<[string, string, string]>(
      `INSERT OR IGNORE INTO deps (package_id, needs_id, command_id) VALUES (?, ?, ?)`,
    ),
    dependents: db.prepare<[string, string], { command_id: string }>(
      `SELECT command_id FROM deps WHERE package_id = ? AND needs_id = ?`,
    ),
    runningInQueue: db.prepare<[string, string], CommandRow>(
      `SELECT * FROM commands WHERE node = ? AND resource = ? AND state = 'running' LIMIT 1`,
    ),
    headOfQueue: db.prepare<[string, string], CommandRow>(
      `SELECT * FROM commands INDEXED BY commands_queue
       WHERE node = ? AND resource = ? AND active = 1 AND state = 'ready'
       ORDER BY seq LIMIT 1`,
    ),
    expiredLeases: db.prepare<[number], CommandRow>(
      `SELECT * FROM commands WHERE state = 'running' AND lease_expires_at <= ?
       ORDER BY seq`,
    ),
    allRunning: db.prepare<[], CommandRow>(
      `SELECT * FROM commands WHERE state = 'running' ORDER BY seq`,
    ),
    updateCommand: db.prepare<
      Pick<
        CommandRow,
        | 'package_id'
        | 'id'
        | 'state'
        | 'active'
        | 'pending_needs'
        | 'attempt'
        | 'failures'
        | 'attempt_id'
        | 'holder'
        | 'lease_expires_at'
        | 'deadline_at'
        | 'available_at'
        | 'reason'
        | 'error'
        | 'output'
        | 'updated_at'
      >
    >(
      `UPDATE commands SET state = @state, active = @active, pending_needs = @pending_needs,
         attempt = @attempt,
         failures = @failures, attempt_id = @attempt_id, holder = @holder,
         lease_expires_at = @lease_expires_at, deadline_at = @deadline_at,
         available_at = @available_at, reason = @reason, error = @error, output = @output,
         updated_at = @updated_at
       WHERE package_id = @package_id AND id = @id`,
    ),
  };
}

/** The prepared statements of one connection. */
export type Statements = ReturnType<typeof prepareStatements>;
