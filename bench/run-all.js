// npm run bench — every benchmark, one after the other (each prints its own table).
import { spawnSync } from 'node:child_process';

for (const name of ['cli', 'plan', 'broker', 'apply', 'watch', 'vm', 'supervise', 'ui', 'fleet']) {
  console.log(`\n== bench:${name}`);
  const result = spawnSync(process.execPath, [new URL(`./${name}.js`, import.meta.url).pathname], {
    stdio: 'inherit',
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
