// One wait of the emulation agent, in a process of its own (bench/vm.js runs it): prints the CPU
// time this process spent between the progress lines that open and close the wait, as JSON.
//   node bench/vm-wait.js <built checkout> <SPIN_HOME with VM 1 configured> stop|ready <seconds>
// stop: VM 1 (a guest that ignores ACPI powerdown) is started, then stopped with a timeout of
// <seconds>: measured from "sending ACPI powerdown" to "powerdown timed out".
// ready: VM 1 is started with a ready_when its console never matches and a ready_timeout of
// <seconds>: measured from "waiting for the console" to the "sending QMP quit" that ends it.
import { join } from 'node:path';

const [root, home, kind, seconds] = process.argv.slice(2);
const { emulationAgent } = await import(join(root, 'dist/agents/emulation/emulation-agent.js'));
const { agentRoots } = await import(join(root, 'dist/agents/agent-roots.js'));
const agent = emulationAgent();
const marks =
  kind === 'stop'
    ? { from: 'sending ACPI powerdown', to: 'powerdown timed out' }
    : { from: 'waiting for the console', to: 'sending QMP quit' };
const seen = {};
const ctx = {
  signal: new AbortController().signal,
  roots: agentRoots(home),
  progress: (line) => {
    for (const [key, prefix] of Object.entries(marks))
      if (line.startsWith(prefix)) seen[key] = process.cpuUsage();
  },
};
const run = (action, params) => agent.actions.get(action).run(params, ctx);

if (kind === 'stop') {
  await run('start', { id: 1 });
  const { output } = await run('stop', { id: 1, timeout: `${seconds}s` });
  if (!/stopped by/.test(output)) throw new Error(output);
} else {
  const error = await run('start', {
    id: 1,
    ready_when: 'never printed',
    ready_timeout: `${seconds}s`,
  }).then(
    () => undefined,
    (e) => e,
  );
  if (error?.code !== 'timeout') throw new Error(`ready wait ended by ${String(error)}`);
}
if (seen.from === undefined || seen.to === undefined) throw new Error('a progress mark is missing');
const cpu = (seen.to.user - seen.from.user + seen.to.system - seen.from.system) / 1000;
process.stdout.write(`${JSON.stringify({ cpuMs: cpu })}\n`);
