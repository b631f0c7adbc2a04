// Runs the vitest suite. With SPIN_TEST_REPORT set (CI), vitest also writes its JSON report
// there, from which .ci/run prints the plain "N passed, N failed" line.
import { spawnSync } from 'node:child_process';

const args = ['vitest', 'run', ...process.argv.slice(2)];
const report = process.env.SPIN_TEST_REPORT;
if (report) args.push('--reporter=default', '--reporter=json', `--outputFile.json=${report}`);
const result = spawnSync('npx', args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
