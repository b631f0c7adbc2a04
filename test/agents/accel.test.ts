import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { resolveAccel } from '../../src/agents/emulation/accel.js';

async function kvmUsable(): Promise<boolean> {
  return access('/dev/kvm', constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
}

it('uses a forced accelerator as given', async () => {
  expect(await resolveAccel('tcg', '/nonexistent')).toBe('tcg');
  expect(await resolveAccel('kvm', '/nonexistent')).toBe('kvm');
});

it('auto: TCG without a usable /dev/kvm, else the probe result remembered for this boot', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spin-accel-'));
  try {
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    // A remembered answer for this boot is used as is: no probe (which would take seconds).
    await writeFile(join(dir, '.accel-probe.json'), JSON.stringify({ bootId, accel: 'kvm' }));
    const started = Date.now();
    const accel = await resolveAccel('auto', dir);
    expect(accel).toBe((await kvmUsable()) ? 'kvm' : 'tcg');
    expect(Date.now() - started).toBeLessThan(1000);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
