import { spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * Makes the leftovers of a writer killed mid-write, as `kill -9` would: a node process writes a
 * part of each file of `names` into `dir` (`{pid}` in a name becomes its own pid, as spin puts
 * the writer's pid in its temporary names), says so, and is killed with SIGKILL while it holds
 * them. Resolves, once it has been reaped, with its pid: a process that no longer exists.
 */
export async function killedWriter(dir: string, names: string[]): Promise<number> {
  const script = `
    const { writeFileSync } = require('node:fs');
    const { join } = require('node:path');
    const [dir, names] = [process.argv[1], JSON.parse(process.argv[2])];
    for (const name of names) {
      writeFileSync(join(dir, name.replaceAll('{pid}', String(process.pid))), 'partial');
    }
    process.stdout.write('written\\n');
    setInterval(() => {}, 1 << 30);
  `;
  const child = spawn(process.execPath, ['-e', script, dir, JSON.stringify(names)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  let out = '';
  for await (const chunk of child.stdout) {
    out += String(chunk);
    if (out.includes('written\n')) break;
  }
  child.kill('SIGKILL');
  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  if (signal !== 'SIGKILL') {
    throw new Error(`the writer ended by itself (${String(code)}) before it was killed`);
  }
  if (child.pid === undefined) throw new Error('the writer has no pid');
  return child.pid;
}
