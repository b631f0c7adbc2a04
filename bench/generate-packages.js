// Generates benchmark packages: `count` storage commands shaped as a long chain (each needs the
// one before) or a wide fan-out (all need the first), in one file or spread over `files` files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function generatePackages(dir, { count, shape, files = 1, invalidEvery = 0 }) {
  mkdirSync(dir, { recursive: true });
  const perFile = Math.ceil(count / files);
  const written = [];
  for (let f = 0; f < files; f++) {
    const lines = [
      `package: bench-${shape}-${f}`,
      'defaults: { timeout: 2m, retries: 1 }',
      'commands:',
    ];
    const first = f * perFile;
    const last = Math.min(count, first + perFile);
    for (let i = first; i < last; i++) {
      const needs =
        i === first
          ? ''
          : shape === 'chain'
            ? `    needs: [c${i - 1}]\n`
            : `    needs: [c${first}]\n`;
      const size = invalidEvery > 0 && i % invalidEvery === invalidEvery - 1 ? 0 : 1;
      lines.push(
        `  c${i}:\n    resource: storage\n    action: create_image\n${needs}    params: { volume: vol${f}, image: img${i}.raw, image_size: ${size} }`,
      );
    }
    const file = join(dir, `p${String(f).padStart(3, '0')}.spin.yaml`);
    writeFileSync(file, lines.join('\n') + '\n');
    written.push(file);
  }
  return written;
}
