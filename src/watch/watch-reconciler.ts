import { resolve } from 'node:path';
import type { PackageSpec } from '../core/package.js';
import { SpinError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { applyIn } from '../reconcile/apply.js';
import { destroyIn } from '../reconcile/destroy.js';
import type { ReconcileSummary } from '../reconcile/events.js';
import type { ReconcileSession } from '../reconcile/session.js';
import { PackageFiles } from './package-files.js';
import { PackageRunner, type PackageWork } from './package-runner.js';
import type { ApplyReason, WatchEventBody, WatchListener } from './watch-events.js';
import type { WatchScope } from './watch-scope.js';

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
  session: ReconcileSession;
  scope: WatchScope;
  prune: boolean;
  allowReplace: boolean;
  concurrency: number;
  maxBytes?: number;
  signal: AbortSignal;
  emit: WatchListener;
}

/**
 * Keeps the packages of a watched directory applied, in one session. Files are read when they
 * settle (the caller decides when); each valid read updates its package's newest content and
 * asks for an apply, which the PackageRunner serialises per package and runs side by side across
 * packages. An invalid file leaves its package at its last good content. A package whose file is
 * gone (or that its file no longer defines) is destroyed with `prune`, or else reported as no
 * longer managed and left.
 */
export class WatchReconciler {
  readonly #options: WatchReconcilerOptions;
  readonly #files: PackageFiles;
  readonly #runner: PackageRunner;
  /** The newest good content of every package a file defines. */
  readonly #managed = new Map<string, PackageSpec>();
  /** The file a package was last defined in, for packages let go. */
  readonly #lastFile = new Map<string, string>();
  readonly #reads = new Map<string, Promise<void>>();
  readonly #releases = new Set<Promise<void>>();
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
    const loaded: PackageSpec[] = [];
    for (const file of files) {
      const verdict = await this.#files.read(file);
      if (verdict.kind === 'loaded') {
        this.emit({ type: 'loaded', file, package: verdict.pkg.name });
        this.#managed.set(verdict.pkg.name, verdict.pkg);
        this.#lastFile.set(verdict.pkg.name, file);
        loaded.push(verdict.pkg);
      } else if (verdict.kind === 'invalid') {
        this.#reportInvalid(file, verdict.diagnostics, verdict.kept);
      }
    }
    return () => {
      for (const pkg of loaded) this.#runner.request(pkg.name, { kind: 'apply', reason });
    };
  }

  /**
   * Packages the state holds from files below the directory that no file defines any more
   * (removed while nobody watched): let go, as if their file had just been removed.
   */
  releaseOrphans(): void {
    const present = new Set(this.#files.files);
    for (const [name, pkg] of Object.entries(this.#options.session.state.data.packages)) {
      const file = resolve(pkg.file);
      if (this.#managed.has(name) || present.has(file) || !this.#options.scope.includes(file)) {
        continue;
      }
      this.#release(name, file);
    }
  }

  /** Applies every managed package again (drift repair) and repeats what is still invalid. */
  resync(): void {
    for (const name of this.#managed.keys())
      this.#runner.request(name, { kind: 'apply', reason: 'resync' });
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
        const { pkg } = verdict;
        this.emit({ type: 'loaded', file, package: pkg.name });
        this.#managed.set(pkg.name, pkg);
        this.#lastFile.set(pkg.name, file);
        if (verdict.released !== undefined) this.#release(verdict.released, file);
        this.#runner.request(pkg.name, { kind: 'apply', reason });
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
    const { session, signal } = this.#options;
    if (signal.aborted) return;
    const emit = this.#tag(name);
    const file = this.#lastFile.get(name) ?? '';
    if (work.kind === 'apply') {
      const pkg = this.#managed.get(name);
      if (pkg === undefined) return;
      this.emit({ type: 'apply-start', package: name, file: pkg.file, reason: work.reason });
      const started = performance.now();
      const summary = await this.#guard(name, pkg.file, () =>
        applyIn(session, {
          packages: [pkg],
          prune: this.#options.prune,
          allowReplace: this.#options.allowReplace,
          signal,
          emit,
        }),
      );
      if (summary === undefined) return;
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
    if (!this.#options.prune) {
      this.emit({ type: 'unmanaged', package: name, file });
      return;
    }
    if (!Object.hasOwn(session.state.data.packages, name)) {
      this.emit({ type: 'unmanaged', package: name, file });
      return;
    }
    this.emit({ type: 'destroy-start', package: name, file });
    const summary = await this.#guard(name, file, () =>
      destroyIn(session, { packages: [name], signal, emit }),
    );
    if (summary !== undefined) this.emit({ type: 'destroyed', package: name, file, summary });
  }

  /** Runs an apply or destroy, counting its failures; a throw becomes an `error` event. */
  async #guard(
    name: string,
    file: string,
    work: () => Promise<ReconcileSummary>,
  ): Promise<ReconcileSummary | undefined> {
    try {
      const summary = await work();
      this.#failed += summary.failed;
      if (summary.interrupted) this.#interrupted = true;
      return summary;
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

  #tag(
    name: string,
  ): (event: Parameters<NonNullable<Parameters<typeof applyIn>[1]['emit']>>[0]) => void {
    return (event) => {
      this.emit({ type: 'reconcile', package: name, event });
    };
  }
}

type WatchEventInvalid = Extract<WatchEventBody, { type: 'invalid' }>;
