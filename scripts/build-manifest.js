// Writes oclif.manifest.json from the compiled commands, so that `spin <command>` loads only the
// one command it runs instead of importing every command to read its flags.
import { writeFileSync } from 'node:fs';
import { Plugin } from '@oclif/core';

const root = new URL('..', import.meta.url).pathname;
const plugin = new Plugin({
  root,
  type: 'core',
  ignoreManifest: true,
  errorOnManifestCreate: true,
});
await plugin.load();
writeFileSync(
  new URL('../oclif.manifest.json', import.meta.url),
  JSON.stringify(plugin.manifest, null, 2) + '\n',
);
console.log(`wrote oclif.manifest.json (${Object.keys(plugin.manifest.commands).length} commands)`);
