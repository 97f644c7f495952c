// Signs in to the Agora portal in a real browser, opens the audit log, signs out.
//
//   AGORA_URL=http://127.0.0.1:PORT AGORA_EMAIL=... AGORA_PASSWORD=... node portal-signin.mjs
//
// Optional: AGORA_SCREENSHOT_DIR (a PNG after each step: 01-signin.png, ...),
// AGORA_TEST_CHROMIUM (default /usr/bin/chromium, Debian's Chromium).
// Exits 0 when every step passed; otherwise prints the failed step and why, exits 1.
// It always stops by itself within OVERALL_TIMEOUT_MS.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;
const SUBMIT = 'button[type="submit"], button:not([type]), input[type="submit"]';

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) fail('setup', `environment variable ${name} is not set`);
  return value;
}

function fail(step, why) {
  console.error(`FAIL [${step}]: ${why}`);
  process.exit(1);
}

const BASE = requiredEnv('AGORA_URL').replace(/\/+$/, '');
const EMAIL = requiredEnv('AGORA_EMAIL');
const PASSWORD = requiredEnv('AGORA_PASSWORD');
const SHOTS = process.env.AGORA_SCREENSHOT_DIR || '';
const CHROMIUM = process.env.AGORA_TEST_CHROMIUM || '/usr/bin/chromium';

let currentStep = 'setup';
let browser;

// The hard stop: whatever hangs, the script ends.
setTimeout(() => {
  console.error(`FAIL [${currentStep}]: overall timeout of ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(1); // Playwright kills the browser it launched when Node exits.
}, OVERALL_TIMEOUT_MS).unref();

function expect(condition, why) {
  if (!condition) throw new Error(why);
}

const path = (page) => new URL(page.url()).pathname;
const visible = (locator) =>
  locator.first().waitFor({ state: 'visible' }).then(() => true, () => false);

// Submits by clicking `button` and waits until the page it leads to has loaded.
async function submitVia(page, button) {
  const navigated = page.waitForEvent('framenavigated', {
    predicate: (frame) => frame === page.mainFrame(),
  });
  await button.click();
  await navigated;
  await page.waitForLoadState('load');
}

async function fillSignin(page, password) {
  const form = page.locator('form#signin');
  await form.locator('input[name="email"]').fill(EMAIL);
  await form.locator('input[name="password"]').fill(password);
  await submitVia(page, form.locator(SUBMIT).first());
}

async function main() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // launch() gives the browser a fresh, temporary --user-data-dir of its own.
    // The network flags keep Chromium from calling out of this closed network.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: STEP_TIMEOUT_MS,
  });
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });

  let count = 0;
  async function step(name, body) {
    currentStep = `${String(count + 1).padStart(2, '0')}-${name}`;
    try {
      await body();
    } catch (error) {
      if (SHOTS) await page.screenshot({ path: join(SHOTS, `${currentStep}-failed.png`) }).catch(() => {});
      throw error;
    }
    count += 1;
    if (SHOTS) await page.screenshot({ path: join(SHOTS, `${currentStep}.png`), fullPage: true });
    console.log(`ok   ${currentStep}`);
  }

  await step('signin', async () => {
    const response = await page.goto(`${BASE}/signin`);
    expect(response && response.ok(), `GET /signin answered ${response && response.status()}`);
    const form = page.locator('form#signin');
    expect((await form.count()) === 1, 'no form#signin on /signin');
    for (const name of ['email', 'password']) {
      expect((await form.locator(`input[name="${name}"]`).count()) === 1, `form#signin has no input ${name}`);
    }
    const csrf = form.locator('input[type="hidden"][name="csrf_token"]');
    expect((await csrf.count()) === 1, 'form#signin has no hidden csrf_token input');
    expect((await csrf.inputValue()) !== '', 'the csrf_token input is empty');
    expect((await form.locator(SUBMIT).count()) >= 1, 'form#signin has no submit button');
  });

  await step('wrong-password', async () => {
    await fillSignin(page, `${PASSWORD}-wrong`);
    const alert = page.locator('[role="alert"]', { hasText: 'did not match' });
    expect(await visible(alert), 'no visible [role="alert"] saying "did not match"');
    expect(path(page) === '/signin', `URL left /signin: ${page.url()}`);
  });

  await step('home', async () => {
    await fillSignin(page, PASSWORD);
    expect(path(page) === '/', `after signing in the URL is ${page.url()}, not /`);
    expect(await visible(page.locator('h1')), 'no visible h1 on /');
    const audit = page.locator('nav[aria-label="Main"]').getByRole('link', { name: 'Audit log' });
    expect((await audit.count()) >= 1, 'nav[aria-label="Main"] has no link "Audit log"');
  });

  await step('session-cookie', async () => {
    const cookie = (await context.cookies(BASE)).find((c) => c.name === 'agora_session');
    expect(cookie, 'no agora_session cookie after signing in');
    expect(cookie.httpOnly, 'agora_session is not HttpOnly');
    expect(cookie.sameSite === 'Lax', `agora_session is SameSite=${cookie.sameSite}, not Lax`);
  });

  await step('audit', async () => {
    const link = page.locator('nav[aria-label="Main"]').getByRole('link', { name: 'Audit log' }).first();
    await link.click();
    await page.waitForURL((url) => url.pathname.endsWith('/audit'));
    const rows = page.locator('table#audit-entries tbody tr');
    await rows.first().waitFor();
    const actions = (await rows.locator('td.action').allInnerTexts()).map((text) => text.trim());
    expect(actions.includes('session.create'),
      `no audit row with action session.create (actions: ${actions.join(', ') || 'none'})`);
  });

  await step('signout', async () => {
    const form = page.locator('form#signout');
    expect((await form.count()) === 1, 'no form#signout');
    expect((await form.getAttribute('method'))?.toLowerCase() === 'post', 'form#signout is not method="post"');
    expect((await form.locator('input[name="csrf_token"]').count()) === 1, 'form#signout has no csrf_token');
    await submitVia(page, form.getByRole('button', { name: 'Sign out' }));
    expect(path(page) === '/signin', `after signing out the URL is ${page.url()}, not /signin`);
    await page.goto(`${BASE}/`);
    expect(path(page) === '/signin', `GET / after signing out ended on ${page.url()}, not /signin`);
  });

  console.log(`portal-signin: all ${count} steps passed`);
}

try {
  await main();
  await browser.close();
  process.exit(0);
} catch (error) {
  console.error(`FAIL [${currentStep}]: ${error.message.replace(/\x1b\[[0-9;]*m/g, '')}`);
  await browser?.close().catch(() => {});
  process.exit(1);
}
