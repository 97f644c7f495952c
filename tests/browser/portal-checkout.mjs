// A customer shops in the Agora portal in a real browser: signs in, searches the market, buys
// a loaf with the wallet, sees the paid order and the wallet's new balance.
//
//   AGORA_URL=http://127.0.0.1:PORT AGORA_EMAIL=... AGORA_PASSWORD=... node portal-checkout.mjs
//
// Meant for `agora demo`'s customer (cleo@customer.example), whose wallet holds 80.40 EUR and
// whose market has FreshMart's "Sourdough loaf" at 3.90 EUR.
// Optional: AGORA_SCREENSHOT_DIR, AGORA_TEST_CHROMIUM (default /usr/bin/chromium).
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

setTimeout(() => {
  console.error(`FAIL [${currentStep}]: overall timeout of ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS).unref();

function expect(condition, why) {
  if (!condition) throw new Error(why);
}

const path = (page) => new URL(page.url()).pathname;

async function submitVia(page, button) {
  const navigated = page.waitForEvent('framenavigated', {
    predicate: (frame) => frame === page.mainFrame(),
  });
  await button.click();
  await navigated;
  await page.waitForLoadState('load');
}

async function main() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: STEP_TIMEOUT_MS,
  });
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });

  let count = 0;
  async function step(name, body) {
    currentStep = `checkout-${String(count + 1).padStart(2, '0')}-${name}`;
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
    await page.goto(`${BASE}/signin`);
    const form = page.locator('form#signin');
    await form.locator('input[name="email"]').fill(EMAIL);
    await form.locator('input[name="password"]').fill(PASSWORD);
    await submitVia(page, form.locator(SUBMIT).first());
    expect(path(page) === '/', `after signing in the URL is ${page.url()}, not /`);
  });

  await step('wallet-before', async () => {
    await page.goto(`${BASE}/wallet`);
    const balance = (await page.locator('#wallet-balance').innerText()).trim();
    expect(balance.includes('80.40'), `the wallet shows ${balance}, not 80.40`);
  });

  await step('search', async () => {
    await page.goto(`${BASE}/market`);
    const form = page.locator('form#market-search');
    await form.locator('input[name="q"]').fill('sourdough');
    await submitVia(page, form.locator(SUBMIT).first());
    const link = page.getByRole('link', { name: 'Sourdough loaf' });
    expect((await link.count()) >= 1, 'searching "sourdough" found no link "Sourdough loaf"');
    await link.first().click();
    await page.waitForURL((url) => url.pathname.startsWith('/market/listings/'));
  });

  await step('buy', async () => {
    const form = page.locator('form#buy');
    expect((await form.count()) === 1, 'no form#buy on the listing page');
    await form.locator('input[name="quantity"]').fill('1');
    await form.locator('input[name="pay_with"][value="wallet"]').check();
    await submitVia(page, form.locator(SUBMIT).first());
    expect(path(page).startsWith('/orders/'), `after buying the URL is ${page.url()}, not /orders/…`);
    const status = (await page.locator('#order-status').innerText()).trim();
    expect(status === 'paid', `the order's status is "${status}", not "paid"`);
  });

  await step('history', async () => {
    const id = path(page).split('/').pop();
    await page.goto(`${BASE}/orders`);
    expect((await page.locator(`a[href="/orders/${id}"]`).count()) >= 1, `/orders does not list ${id}`);
  });

  await step('wallet-after', async () => {
    await page.goto(`${BASE}/wallet`);
    const balance = (await page.locator('#wallet-balance').innerText()).trim();
    expect(balance.includes('76.50'), `the wallet shows ${balance}, not 76.50 (80.40 − 3.90)`);
  });

  console.log(`portal-checkout: all ${count} steps passed`);
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
