// What every browser test script shares: its settings from the environment, Debian's Chromium
// launched for a closed network, numbered steps with a screenshot each, and a deadline after
// which the script fails by itself.
//
// Every script reads AGORA_URL, AGORA_EMAIL and AGORA_PASSWORD, and optionally
// AGORA_SCREENSHOT_DIR and AGORA_TEST_CHROMIUM (default /usr/bin/chromium). It exits 0 when every
// step passed; otherwise it prints "FAIL [step]: why" and exits 1.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const SUBMIT = 'button[type="submit"], button:not([type]), input[type="submit"]';

export function fail(step, why) {
  console.error(`FAIL [${step}]: ${why}`);
  process.exit(1); // Playwright kills the browser it launched when Node exits.
}

export function requiredEnv(name) {
  const value = process.env[name];
  if (!value) fail('setup', `environment variable ${name} is not set`);
  return value;
}

export const BASE = requiredEnv('AGORA_URL').replace(/\/+$/, '');
export const EMAIL = requiredEnv('AGORA_EMAIL');
export const PASSWORD = requiredEnv('AGORA_PASSWORD');
export const SHOTS = process.env.AGORA_SCREENSHOT_DIR || '';
const CHROMIUM = process.env.AGORA_TEST_CHROMIUM || '/usr/bin/chromium';

const state = { step: 'setup', browser: null };

/// The step running now, as failures name it.
export const currentStep = () => state.step;

/// Names what runs next when it is not a numbered step (a check over several pages, say).
export function enterStep(name) {
  state.step = name;
}

export function expect(condition, why) {
  if (!condition) throw new Error(why);
}

export const path = (page) => new URL(page.url()).pathname;

/// Clicks a form's button and waits until the page it leads to has loaded.
export async function submitVia(page, button) {
  const navigated = page.waitForEvent('framenavigated', {
    predicate: (frame) => frame === page.mainFrame(),
  });
  await button.click();
  await navigated;
  await page.waitForLoadState('load');
}

/// Signs `email` in through the portal's form and expects to land on the home page.
export async function signIn(page, email = EMAIL, password = PASSWORD) {
  await page.goto(`${BASE}/signin`);
  const form = page.locator('form#signin');
  await form.locator('input[name="email"]').fill(email);
  await form.locator('input[name="password"]').fill(password);
  await submitVia(page, form.locator(SUBMIT).first());
  expect(path(page) === '/', `after signing in as ${email} the URL is ${page.url()}, not /`);
}

/// Launches Chromium headless with a fresh, temporary profile; the flags keep it from calling
/// out of this closed network.
export async function launch(stepTimeoutMs) {
  state.browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: stepTimeoutMs,
  });
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  return state.browser;
}

/// Numbered steps on `page`, named `{prefix}NN-{name}`: each prints "ok" and saves a full-page
/// screenshot when it passed, and a screenshot of the failure when it did not. `step.count()`
/// says how many passed.
export function steps(page, prefix) {
  let count = 0;
  async function step(name, body) {
    state.step = `${prefix}${String(count + 1).padStart(2, '0')}-${name}`;
    try {
      await body();
    } catch (error) {
      if (SHOTS) await page.screenshot({ path: join(SHOTS, `${state.step}-failed.png`) }).catch(() => {});
      throw error;
    }
    count += 1;
    if (SHOTS) await page.screenshot({ path: join(SHOTS, `${state.step}.png`), fullPage: true });
    console.log(`ok   ${state.step}`);
  }
  step.count = () => count;
  return step;
}

/// Runs `main`, then exits 0, or 1 naming the step that failed; fails by itself after
/// `overallTimeoutMs`.
export function run(overallTimeoutMs, main) {
  setTimeout(() => {
    console.error(`FAIL [${state.step}]: overall timeout of ${overallTimeoutMs / 1000} s`);
    process.exit(1);
  }, overallTimeoutMs).unref();
  main().then(
    async () => {
      await state.browser?.close();
      process.exit(0);
    },
    async (error) => {
      console.error(`FAIL [${state.step}]: ${error.message.replace(/\x1b\[[0-9;]*m/g, '')}`);
      await state.browser?.close().catch(() => {});
      process.exit(1);
    },
  );
}
