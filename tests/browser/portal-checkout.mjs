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
import {
  BASE, SUBMIT, expect, launch, path, run, signIn, steps, submitVia,
} from './harness.mjs';

const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;

async function main() {
  const browser = await launch(STEP_TIMEOUT_MS);
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  const step = steps(page, 'checkout-');

  await step('signin', () => signIn(page));

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

  console.log(`portal-checkout: all ${step.count()} steps passed`);
}

run(OVERALL_TIMEOUT_MS, main);
