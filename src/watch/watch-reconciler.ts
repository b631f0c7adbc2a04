import { resolve } from 'node:path';
import { SpinError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import type { ReconcileListener, ReconcileSummary } from '../reconcile/events.js';
import { PackageFiles } from './package-files.js';
import { PackageRunner, type PackageWork } from './package-runner.js';
import type { ApplyReason, WatchEventBody, WatchListener } from './watch-events.js';
import type { WatchScope } from './watch-scope.js';
import type { WatchedPackage, WatchTarget } from './watch-target.js';

/** How a watch (or `--once`) went, for its exit code. */
export interface WatchOutcome {
  /** Files that were invalid when the watch ended. */
  invalid: number;
  /** Commands that failed, over every apply and destroy. */
  failed: number;
  /** Applies or destroys that threw instead of reporting a summary. */
  errors: { package?: string; code: string; message: string; exitCode: ExitCode }[];
  interrupted: boolean;
  /** apply's exit code for this outcome: 2 invalid, an error's own, 1 failed or interrupted, 0. */
  exitCode: ExitCode;
}

/** What a reconciler needs. */
export interface WatchReconcilerOptions {
  /** Where applies and destroys run, against which state. */
  target: WatchTarget;
  scope: WatchScope;
  /** Destroy the package of a removed file, rather than leave it. */
  prune: boolean;
  concurrency: number;
  maxBytes?: number;
  signal: AbortSignal;
  emit: WatchListener;
}

/**
 * Keeps the packages of a watched directory applied, through one target. Files are read when they
 * settle (the caller decides when); each valid read updates its package's newest content and
 * asks for an apply, which the PackageRunner serialises per package and runs side by side across
 * packages. An invalid file leaves its package at its last good content. A package whose file is
 * gone (or that its file no longer defines) is destroyed with `prune`, or else reported as no
 * longer managed and left; a destroy that fails before it can run is tried again at the next
 * resync.
 */
export class WatchReconciler {
  readonly #options: WatchReconcilerOptions;
  readonly #files: PackageFiles;
  readonly #runner: PackageRunner;
  /** The newest good content of every package a file defines. */
  readonly #managed = new Map<string, WatchedPackage>();
  /** The file a package was last defined in, for packages let go. */
  readonly #lastFile = new Map<string, string>();
  readonly #reads = new Map<string, Promise<void>>();
  readonly #releases = new Set<Promise<void>>();
  /** Packages let go whose destroy threw: asked for again at each resync. */
  readonly #unreleased = new Set<string>();
  #failed = 0;
  #interrupted = false;
  readonly #errors: WatchOutcome['errors'] = [];

  constructor(options: WatchReconcilerOptions) {
    this.#options = options;
    this.#files = new PackageFiles(
      options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes },
    );
    this.#runner = new PackageRunner({
      concurrency: options.concurrency,
      run: (name, work) => this.#run(name, work),
    });
  }

  /** Stamps and emits an event. */
  emit(event: WatchEventBody): void {
    this.#options.emit({ at: Date.now(), ...event });
  }

  /** Every file read so far (and still there). */
  get files(): string[] {
    return this.#files.files;
  }

  /** The files that are invalid now. */
  get invalidFiles(): ReturnType<PackageFiles['invalid']> {
    return this.#files.invalid();
  }

  /**
   * Reads a settled file (one read per file at a time, in order) and acts on what changed:
   * `reason` is what an apply it causes is told.
   */
  read(file: string, reason: ApplyReason = 'changed'): Promise<void> {
    const previous = this.#reads.get(file) ?? Promise.resolve();
    const next = previous.then(() => this.#read(file, reason));
    this.#reads.set(file, next);
    void next.finally(() => {
      if (this.#reads.get(file) === next) this.#reads.delete(file);
    });
    return next;
  }

  /**
   * Reads files and reports them, but applies nothing yet: for `--once`, which runs nothing
   * when any file is invalid. Returns the function that asks for the applies.
   */
  async readAll(files: readonly string[], reason: ApplyReason): Promise<() => void> {
    const loaded: string[] = [];
    for (const file of files) {
      const verdict = await this.#files.read(file);
      if (verdict.kind === 'loaded') {
        this.#manage(file, verdict);
        loaded.push(verdict.pkg.name);
      } else if (verdict.kind === 'invalid') {
        this.#reportInvalid(file, verdict.diagnostics, verdict.kept);
      }
    }
    return () => {
      for (const name of loaded) this.#runner.request(name, { kind: 'apply', reason });
    };
  }

  /**
   * Packages the state holds from files below the directory that no file defines any more
   * (removed while nobody watched): let go, as if their file had just been removed.
   */
  releaseOrphans(): void {
    const present = new Set(this.#files.files);
    for (const recorded of this.#options.target.recorded()) {
      const { name } = recorded;
      const file = resolve(recorded.file);
      if (this.#managed.has(name) || present.has(file) || !this.#options.scope.includes(file)) {
        continue;
      }
      this.#release(name, file);
    }
  }

  /**
   * Applies every managed package again (drift repair), tries again the destroys that failed,
   * and repeats what is still invalid.
   */
  resync(): void {
    for (const name of this.#managed.keys())
      this.#runner.request(name, { kind: 'apply', reason: 'resync' });
    for (const name of this.#unreleased) this.#runner.request(name, { kind: 'remove' });
    for (const { file, diagnostics, kept } of this.#files.invalid()) {
      this.#reportInvalid(file, diagnostics, kept);
    }
  }

  /** Resolves when no read, apply or destroy is waiting or running. */
  async idle(): Promise<void> {
    while (this.#reads.size > 0 || this.#releases.size > 0) {
      await Promise.all([...this.#reads.values(), ...this.#releases]);
    }
    await this.#runner.idle();
  }

  /** Starts nothing more and waits for what runs (the caller has aborted the signal). */
  async stop(): Promise<WatchOutcome> {
    await Promise.all([...this.#reads.values(), ...this.#releases]);
    await this.#runner.stop();
    return this.outcome();
  }

  /** How it went so far. */
  outcome(): WatchOutcome {
    const invalid = this.#files.invalid().length;
    const exitCode =
      invalid > 0
        ? ExitCode.invalidInput
        : (this.#errors[0]?.exitCode ??
          (this.#failed > 0 || this.#interrupted ? ExitCode.commandFailed : ExitCode.ok));
    return {
      invalid,
      failed: this.#failed,
      errors: [...this.#errors],
      interrupted: this.#interrupted,
      exitCode,
    };
  }

  async #read(file: string, reason: ApplyReason): Promise<void> {
    const verdict = await this.#files.read(file);
    switch (verdict.kind) {
      case 'same':
        return;
      case 'loaded': {
        this.#manage(file, verdict);
        if (verdict.released !== undefined) this.#release(verdict.released, file);
        this.#runner.request(verdict.pkg.name, { kind: 'apply', reason });
        return;
      }
      case 'invalid':
        this.#reportInvalid(file, verdict.diagnostics, verdict.kept);
        return;
      case 'removed':
        if (verdict.released !== undefined) this.#release(verdict.released, file);
        return;
    }
  }

  /** A file read valid: its package's newest content is what it says. */
  #manage(file: string, { pkg, text }: WatchedPackage): void {
    this.emit({ type: 'loaded', file, package: pkg.name });
    this.#managed.set(pkg.name, { pkg, text });
    this.#lastFile.set(pkg.name, file);
    this.#unreleased.delete(pkg.name);
  }

  #reportInvalid(file: string, diagnostics: WatchEventInvalid['diagnostics'], kept?: string): void {
    this.emit({
      type: 'invalid',
      file,
      diagnostics,
      ...(kept === undefined ? {} : { package: kept }),
    });
  }

  /**
   * No file defines `name` any more: files refused for wanting the name are read again first,
   * and only when none of them takes it is the package let go.
   */
  #release(name: string, file: string): void {
    this.#managed.delete(name);
    this.#lastFile.set(name, file);
    const blocked = this.#files.blockedOn(name);
    for (const other of blocked) this.#files.forget(other);
    const released = Promise.all(blocked.map((other) => this.read(other))).then(() => {
      if (!this.#managed.has(name)) this.#runner.request(name, { kind: 'remove' });
    });
    this.#releases.add(released);
    void released.finally(() => this.#releases.delete(released));
  }

  async #run(name: string, work: PackageWork): Promise<void> {
    const { target, signal } = this.#options;
    if (signal.aborted) return;
    const run = { signal, emit: this.#tag(name) };
    const file = this.#lastFile.get(name) ?? '';
    if (work.kind === 'apply') {
      const watched = this.#managed.get(name);
      if (watched === undefined) return;
      const { pkg } = watched;
      this.emit({ type: 'apply-start', package: name, file: pkg.file, reason: work.reason });
      const started = performance.now();
      const summary = await this.#guard(name, pkg.file, () => target.apply(watched, run));
      if (summary === undefined) return;
      this.#count(summary);
      this.emit({
        type: 'apply-done',
        package: name,
        file: pkg.file,
        reason: work.reason,
        summary,
        ms: Math.round(performance.now() - started),
      });
      return;
    }
    if (this.#managed.has(name)) return; // its file came back meanwhile
    this.#unreleased.delete(name);
    const held = this.#options.prune && (await this.#guard(name, file, () => target.holds(name)));
    if (held === undefined) {
      this.#unreleased.add(name);
      return;
    }
    if (!held) {
      this.emit({ type: 'unmanaged', package: name, file });
      return;
    }
    this.emit({ type: 'destroy-start', package: name, file });
    const summary = await this.#guard(name, file, () => target.destroy(name, run));
    if (summary === undefined) {
      this.#unreleased.add(name);
      return;
    }
    this.#count(summary);
    this.emit({ type: 'destroyed', package: name, file, summary });
  }

  /** Counts the failures of an apply's or destroy's summary. */
  #count(summary: ReconcileSummary): void {
    this.#failed += summary.failed;
    if (summary.interrupted) this.#interrupted = true;
  }

  /** Runs a step of an apply or destroy; a throw becomes an `error` event and `undefined`. */
  async #guard<T>(name: string, file: string, work: () => Promise<T>): Promise<T | undefined> {
    try {
      return await work();
    } catch (error) {
      const spin =
        error instanceof SpinError
          ? error
          : new SpinError(
              'internal',
              `Internal error: ${error instanceof Error ? error.message : String(error)}`,
            );
      this.#errors.push({
        package: name,
        code: spin.code,
        message: spin.message,
        exitCode: spin.exitCode,
      });
      this.emit({ type: 'error', package: name, file, code: spin.code, message: spin.message });
      return undefined;
    }
  }

  #tag(name: string): ReconcileListener {
    return (event) => {
      this.emit({ type: 'reconcile', package: name, event });
    };
  }
}

type WatchEventInvalid = Extract<WatchEventBody, { type: 'invalid' }>;
