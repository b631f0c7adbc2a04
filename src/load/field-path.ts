/** A path to a field inside a package document: mapping keys and list indexes. */
export type FieldPath = readonly (string | number)[];

/** Renders a field path as people write it: `commands.image.needs[1]`. */
export function formatFieldPath(path: FieldPath): string {
  let out = '';
  for (const step of path) {
    if (typeof step === 'number') out += `[${String(step)}]`;
    else out += out === '' ? step : `.${step}`;
  }
  return out;
}

/** Parses ajv's JSON-pointer instance path (`/commands/a~1b/needs/0`) into a field path. */
export function fromJsonPointer(pointer: string, document: unknown): (string | number)[] {
  if (pointer === '') return [];
  const steps: (string | number)[] = [];
  let node: unknown = document;
  for (const raw of pointer.slice(1).split('/')) {
    const step = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(node)) {
      const index = Number(step);
      steps.push(index);
      node = node[index];
    } else {
      steps.push(step);
      node =
        node !== null && typeof node === 'object'
          ? (node as Record<string, unknown>)[step]
          : undefined;
    }
  }
  return steps;
}
