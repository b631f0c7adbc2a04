import type { Browser, BrowserContext, Page } from 'playwright-core';
import { expect } from 'vitest';
import { spin } from './spin-cli.js';

/** A one-time login address of the web view of the daemon of `home`, as `spin ui` prints it. */
export async function loginUrl(home: string): Promise<string> {
  const run = await spin(['ui', '--no-open'], { env: { SPIN_HOME: home } });
  expect(run.code, run.stderr).toBe(0);
  return run.stdout.trim().split('\n')[0] ?? '';
}

/** A page of a fresh browser context, logged in to the web view of `home`'s daemon. */
export async function loggedIn(
  browser: Browser,
  home: string,
  viewport = { width: 1280, height: 800 },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(await loginUrl(home));
  await page.waitForSelector('[data-link=live]');
  return { context, page };
}
