/** The outcome of an operation whose failures are expected and collected: a value or the list. */
export type Result<T, F> = { ok: true; value: T } | { ok: false; failures: F[] };
