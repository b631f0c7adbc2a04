import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { expect } from 'vitest';
import { repoRoot } from './spin-cli.js';

const ajv = new Ajv2020({ allErrors: true, strict: false });

/**
 * Parses what a command printed as one JSON document of `kind` and checks it against the
 * published schema (schemas/output/<kind>.schema.json), as a CI job reading it would: the test
 * fails naming every mismatch. Returns the document.
 */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the shape it reads
export function expectDocument<T = Record<string, unknown>>(kind: string, text: string): T {
  const doc = JSON.parse(text) as unknown;
  const validate =
    ajv.getSchema(kind) ??
    (ajv.addSchema(
      JSON.parse(
        readFileSync(join(repoRoot, 'schemas', 'output', `${kind}.schema.json`), 'utf8'),
      ) as object,
      kind,
    ),
    ajv.getSchema(kind));
  expect(validate, `a schema for ${kind}`).toBeDefined();
  const ok = validate!(doc);
  expect(ok ? [] : validate!.errors, `${kind} document:\n${text.slice(0, 2000)}`).toEqual([]);
  return doc as T;
}

/** Every line of an event stream, each checked as an `event` document (or the final `error`). */
export function expectEventLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const kind = (JSON.parse(line) as { kind?: string }).kind ?? 'event';
      return expectDocument(kind, line);
    });
}
