import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endProcess, startDaemonProcess } from '../support/cli-process.js';
import { repoRoot, spin } from '../support/spin-cli.js';
import { tinyVm, tinyVmPackage, type TinyVm } from '../support/tiny-vm.js';
import { loggedIn, loginUrl } from '../support/web-login.js';

/** Screenshots of the main views, for a person to look at (gitignored). */
const artifacts = join(repoRoot, 'test-artifacts', 'ui');

let home: string;
let daemon: ChildProcess;
let base: string;
let browser: Browser;
let guest: TinyVm;
const env = (): Record<string, string> => ({ SPIN_HOME: home });

/** Starts `spin daemon run --ui` and resolves with the web view's address once it listens. */
async function startDaemon(port: number): Promise<{ child: ChildProcess; url: string }> {
  const { child, listening } = await startDaemonProcess(home, [
    '--ui',
    '--ui-port',
    String(port),
    '--allow-shell',
  ]);
  return { child, url: String(listening['ui']) };
}

function stopDaemon(child: ChildProcess): Promise<void> {
  return endProcess(child, 'SIGTERM');
}

beforeAll(async () => {
  guest = await tinyVm();
  home = await mkdtemp(join(tmpdir(), 'spin-web-'));
  await mkdir(artifacts, { recursive: true });
  const started = await startDaemon(0);
  daemon = started.child;
  base = started.url;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser.close();
  await stopDaemon(daemon);
  const pid = Number(
    (await readFile(join(home, 'vms/tiny/qemu.pid'), 'utf8').catch(() => '')).trim(),
  );
  if (pid > 1) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await rm(home, { recursive: true, force: true });
});

describe('the web view in a real browser', () => {
  it('logs in once through the login address, and refuses the cookieless, a reused ticket, another Host or Origin', async () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:[0-9]+\/$/);
    const page = await fetch(base);
    expect(page.status).toBe(401);
    expect(await page.text()).toContain('spin ui');
    expect((await fetch(new URL('api/packages', base))).status).toBe(401);
    expect((await fetch(new URL('events', base))).status).toBe(401);

    const url = await loginUrl(home);
    const { context, page: tab } = await loggedIn(browser, home);
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: 'Strict', domain: '127.0.0.1' });
    const token = (await readFile(join(home, 'spind.token'), 'utf8')).trim();
    expect(await tab.content()).not.toContain(token);
    // The first login address was never used; the one the page used cannot be used twice.
    const spent = new URL(tab.url());
    expect(spent.pathname).toBe('/');
    const again = await fetch(url, { redirect: 'manual' });
    expect(again.status).toBe(303);
    expect((await fetch(url, { redirect: 'manual' })).status).toBe(401);

    const cookie = `${cookies[0]!.name}=${cookies[0]!.value}`;
    expect((await fetch(new URL('api/packages', base), { headers: { cookie } })).status).toBe(200);
    expect((await fetch(new URL('api/packages/%E0', base), { headers: { cookie } })).status).toBe(
      400,
    );
    expect(
      (await fetch(new URL('api/vms/..%2F..%2Fetc/console', base), { headers: { cookie } })).status,
    ).toBe(400);
    const foreign = await fetch(new URL('events', base), {
      headers: { cookie, origin: 'http://evil.example' },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    const crossSite = await fetch(new URL('events', base), {
      headers: { cookie, 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.status).toBe(403);
    // A DNS-rebinding page reaches the port under its own name (fetch cannot set Host).
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = request(
        new URL('api/packages', base),
        { headers: { cookie, host: `evil.example:${new URL(base).port}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(rebound).toBe(421);
    await context.close();
  });

  it('follows an apply live: states change, a failure shows its error and output, its dependent why it was skipped', async () => {
    const gate = join(home, 'gate');
    const file = join(home, 'live.spin.yaml');
    await writeFile(
      file,
      `package: live
defaults: { timeout: 1m, retries: 0 }
commands:
  gate:
    resource: shell
    action: run
    params: { argv: ['/bin/sh', '-c', 'while [ ! -e ${gate} ]; do sleep 0.05; done; echo opened'] }
  fail:
    resource: shell
    action: run
    needs: [gate]
    params: { argv: ['/bin/sh', '-c', 'echo compiling the thing; echo disk on fire >&2; exit 3'] }
  after:
    resource: shell
    action: run
    needs: [fail]
    params: { argv: ['/bin/true'] }
  aside:
    resource: storage
    action: add_volume
    params: { path: aside }
`,
    );
    const { context, page } = await loggedIn(browser, home);
    await page.goto(`${base}#/packages`);
    await page.waitForSelector('.empty');
    const applying = spin(['apply', file, '--output', 'plain'], { env: env() });

    // The package appears in the list, pushed; its graph shows the gate running.
    await page.click('[data-package=live] a');
    await page.waitForSelector('[data-command=gate][data-state=running]');
    await page.waitForSelector('[data-command=aside][data-state=succeeded]');
    expect(await page.getAttribute('[data-command=after]', 'data-state')).toMatch(
      /^(waiting|ready|staged)$/,
    );
    await page.screenshot({ path: join(artifacts, 'package-running.png') });

    await writeFile(gate, '');
    await page.waitForSelector('[data-command=gate][data-state=succeeded]');
    await page.waitForSelector('[data-command=fail][data-state=failed]');
    await page.waitForSelector('[data-command=after][data-state=skipped]');
    const applied = await applying;
    expect(applied.code).toBe(1);

    await page.click('[data-command=fail]');
    const details = page.locator('[data-details=fail]');
    await details.locator('.output').waitFor();
    expect(await details.locator('.error').textContent()).toMatch(/exit(ed)? .*3|code 3|status 3/i);
    const output = await details.locator('.output').textContent();
    expect(output).toContain('compiling the thing');
    expect(output).toContain('disk on fire');
    await page.screenshot({ path: join(artifacts, 'package-failed.png') });

    // By keyboard: focus the skipped command and press Enter.
    await page.focus('[data-command=after]');
    await page.keyboard.press('Enter');
    const reason = await page.locator('[data-details=after] .reason').textContent();
    expect(reason).toContain('fail');

    await page.goto(`${base}#/packages`);
    await page.waitForSelector('[data-package=live] .badge.state-failed');
    await page.screenshot({ path: join(artifacts, 'packages.png') });

    await page.goto(`${base}#/audit/live`);
    await page.waitForSelector('table.audit tbody tr');
    const rows = await page.locator('table.audit tbody tr').allTextContents();
    expect(rows.some((r) => r.includes('fail') && r.includes('failed'))).toBe(true);
    expect(rows.every((r) => r.includes('live'))).toBe(true);
    await page.screenshot({ path: join(artifacts, 'audit.png') });

    // A phone-sized window keeps the graph and its details readable.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}#/packages/live`);
    await page.click('[data-command=fail]');
    await page.locator('[data-details=fail] .output').waitFor();
    await page.screenshot({ path: join(artifacts, 'package-phone.png'), fullPage: true });
    await context.close();
  }, 30_000);

  it("follows a VM's console as it boots, and its state in the VM list", async () => {
    const file = await tinyVmPackage(home, guest);
    expect(
      (await spin(['apply', file, '--target', 'config', '--output', 'plain'], { env: env() })).code,
    ).toBe(0);
    const { context, page } = await loggedIn(browser, home);
    await page.goto(`${base}#/vms/tiny`);
    await page.waitForSelector('[data-console=tiny]');
    expect(await page.textContent('[data-console=tiny]')).not.toContain('Linux version');

    const applied = await spin(['apply', file, '--output', 'plain'], { env: env() });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    await page.locator('[data-console=tiny]', { hasText: guest.marker }).waitFor();
    const text = (await page.textContent('[data-console=tiny]')) ?? '';
    expect(text.indexOf('Linux version')).toBeGreaterThanOrEqual(0);
    expect(text.indexOf('Linux version')).toBeLessThan(text.indexOf(guest.marker));
    await page.waitForSelector('[data-vm=tiny] .state-running');
    await page.screenshot({ path: join(artifacts, 'vms.png') });
    await context.close();
  }, 60_000);

  it('catches up after a daemon restart without a reload', async () => {
    const { context, page } = await loggedIn(browser, home);
    await page.goto(`${base}#/packages`);
    await page.waitForSelector('[data-package=live]');
    const port = Number(new URL(base).port);
    await stopDaemon(daemon);
    await page.waitForSelector('[data-link=reconnecting]');
    // Applied with no daemon (the broker embedded): the page learns of it once it reconnects.
    const file = join(home, 'later.spin.yaml');
    await writeFile(
      file,
      `package: later
commands:
  vol: { resource: storage, action: add_volume, params: { path: later } }
`,
    );
    expect((await spin(['apply', file, '--output', 'plain'], { env: env() })).code).toBe(0);
    daemon = (await startDaemon(port)).child;
    await page.waitForSelector('[data-link=live]');
    await page.waitForSelector('[data-package=later] .badge.state-succeeded');
    await context.close();
  }, 30_000);
});
