// The demo customer uses two partners' mini-apps inside the Agora portal, in a real browser: she
// opens the Apps directory (also at a phone's width), opens Vila Clinic's consultation app, lets it
// use her name in the portal's consent dialog and is greeted by name, even after the frame
// reloads (the launch context is asked for again, never kept in the URL), books a doctor's free time
// and pays in the portal's cashier dialog (which names Vila Clinic and the amount), sees the order
// in her history and her wallet go down by that amount, revokes the clinic's grant on /grants and
// finds the clinic no longer knows her name; then she buys a product in FreshMart's shop app.
//
//   AGORA_URL=http://127.0.0.1:PORT AGORA_EMAIL=... AGORA_PASSWORD=... node portal-miniapp.mjs
//
// Meant for `agora demo`'s customer (cleo@customer.example), who has granted the clinic nothing
// yet; it can run once per demo. Optional: AGORA_SCREENSHOT_DIR, AGORA_TEST_CHROMIUM (default
// /usr/bin/chromium). Exits 0 when every step passed; otherwise prints the failed step and why,
// exits 1. It always stops by itself within OVERALL_TIMEOUT_MS.
import { join } from 'node:path';
import {
  BASE, EMAIL, PASSWORD, SHOTS, SUBMIT, currentStep, expect, launch, path, run, signIn, steps,
  submitVia,
} from './harness.mjs';

const OVERALL_TIMEOUT_MS = 150_000;
const STEP_TIMEOUT_MS = 15_000;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

// The first decimal number in a text such as "80.40 EUR".
function amountIn(text) {
  const match = text.replace(/[,\s](?=\d{3}\b)/g, '').match(/-?\d+(?:\.\d+)?/);
  expect(match, `no amount in "${text}"`);
  return Number(match[0]);
}

async function main() {
  const browser = await launch(STEP_TIMEOUT_MS);
  const page = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  const step = steps(page, 'miniapp-');

  const app = page.frameLocator('#miniapp-frame');
  const consent = page.getByRole('dialog', { name: /^Share with / });
  const cashier = (seller) => page.getByRole('dialog', { name: `Pay ${seller}` });
  const balance = async () => {
    await page.goto(`${BASE}/wallet`);
    return amountIn((await page.locator('#wallet-balance').innerText()).trim());
  };
  const focusIsOnADialogButton = () => page.evaluate(() => {
    const active = document.activeElement;
    return Boolean(active && active.tagName === 'BUTTON' && active.closest('dialog[open]'));
  });
  const openApp = async (slug) => {
    await page.goto(`${BASE}/apps`);
    await page.locator(`a[href="/apps/${slug}"]`).first().click();
    await page.waitForURL((url) => url.pathname === `/apps/${slug}`);
    const sandbox = (await page.locator('#miniapp-frame').getAttribute('sandbox')) || '';
    expect(!/allow-top-navigation|allow-popups/.test(sandbox), `the frame's sandbox allows too much: "${sandbox}"`);
  };
  let walletBefore = 0;
  let clinicAmount = 0;
  let walletAfterClinic = 0;
  let grocerAmount = 0;
  let clinicOrder = '';

  await step('signin', () => signIn(page));

  await step('wallet-before', async () => {
    walletBefore = await balance();
    expect(walletBefore > 50, `the wallet holds ${walletBefore}, too little for a consultation`);
  });

  await step('directory', async () => {
    await page.goto(`${BASE}/apps`);
    for (const slug of ['clinic', 'grocer']) {
      expect((await page.locator(`a[href="/apps/${slug}"]`).count()) >= 1, `/apps lists no link to /apps/${slug}`);
    }
    expect((await page.getByText('Vila Clinic').count()) >= 1, '/apps does not name Vila Clinic');
  });

  await step('directory-phone', async () => {
    await page.setViewportSize(PHONE);
    await page.goto(`${BASE}/apps`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow <= 1, `at ${PHONE.width} px wide /apps scrolls sideways by ${overflow} px`);
    expect(await page.locator('a[href="/apps/clinic"]').first().isVisible(), 'the clinic is not visible on a phone');
  });

  await step('clinic', async () => {
    await page.setViewportSize(DESKTOP);
    await openApp('clinic');
    await app.locator('#use-name').waitFor({ state: 'visible' });
    const greeting = await app.locator('#greeting').innerText();
    expect(!greeting.includes('Cleo'), `before any grant the clinic greets "${greeting}"`);
    await app.locator('input[name="slot"]').first().waitFor();
  });

  await step('consent-dialog', async () => {
    await app.getByRole('button', { name: 'Let Vila Clinic use your name' }).click();
    await consent.waitFor({ state: 'visible' });
    const text = await consent.innerText();
    expect(text.includes('Vila Clinic'), `the consent dialog does not name Vila Clinic: "${text}"`);
    expect(text.includes('To greet you and put your name on the booking.'),
      `the consent dialog does not give the manifest's reason: "${text}"`);
    expect(await focusIsOnADialogButton(), 'the focus is not on a button of the consent dialog');
  });

  await step('greeted', async () => {
    await consent.getByRole('button', { name: 'Allow', exact: true }).click();
    await consent.waitFor({ state: 'detached' });
    await app.locator('#greeting', { hasText: 'Cleo' }).waitFor();
    expect(!(await app.locator('#use-name').isVisible()), 'the app still asks for her name');
  });

  await step('reload', async () => {
    // The launch context is not in the frame's URL (Telegram's lives in the fragment and is lost
    // or leaked with it): a reload asks the portal again and the app still knows her.
    const frame = await (await page.locator('#miniapp-frame').elementHandle()).contentFrame();
    const url = frame.url();
    expect(!url.includes('#') && !/token|launch|sub=/.test(url), `the frame's URL carries launch data: ${url}`);
    await frame.goto(url);
    await app.locator('#greeting', { hasText: 'Cleo' }).waitFor();
    await app.locator('input[name="slot"]').first().waitFor();
  });

  await step('slot', async () => {
    const slot = app.locator('input[name="slot"]').first();
    await slot.check();
    const doctor = await slot.getAttribute('data-doctor');
    expect(doctor, 'the chosen time belongs to no doctor');
  });

  await step('cashier', async () => {
    await app.getByRole('button', { name: 'Book and pay' }).click();
    const dialog = cashier('Vila Clinic');
    await dialog.waitFor({ state: 'visible' });
    const text = await dialog.innerText();
    expect(text.includes('Vila Clinic'), `the cashier does not name Vila Clinic: "${text}"`);
    clinicAmount = amountIn(await dialog.locator('#agora-cashier-amount').innerText());
    expect(clinicAmount > 0, `the cashier shows ${clinicAmount}`);
    expect(await focusIsOnADialogButton(), 'the focus is not on a button of the cashier');
  });

  await step('paid', async () => {
    const dialog = cashier('Vila Clinic');
    await dialog.getByRole('button', { name: /^Pay / }).click();
    await dialog.waitFor({ state: 'detached' });
    const status = app.locator('#status', { hasText: 'Booked' });
    await status.waitFor();
    const text = await status.innerText();
    const order = text.match(/ord_[A-Za-z0-9_-]+/);
    expect(order, `the app's status names no order: "${text}"`);
    clinicOrder = order[0];
  });

  await step('orders', async () => {
    await page.goto(`${BASE}/orders`);
    expect((await page.locator(`a[href="/orders/${clinicOrder}"]`).count()) >= 1, `/orders does not list ${clinicOrder}`);
  });

  await step('wallet-after', async () => {
    walletAfterClinic = await balance();
    const paid = Math.round((walletBefore - walletAfterClinic) * 100) / 100;
    expect(paid === clinicAmount, `the wallet went from ${walletBefore} to ${walletAfterClinic}, not down by ${clinicAmount}`);
  });

  // The clinic's rows on /grants that still offer a revoke button.
  const clinicGrants = () => page.locator('tr, li, article, section, div')
    .filter({ hasText: 'Vila Clinic' })
    .filter({ has: page.locator('form[action$="/revoke"]') });

  await step('grants', async () => {
    await page.goto(`${BASE}/grants`);
    expect((await clinicGrants().count()) >= 1, '/grants offers no revoke button for Vila Clinic');
  });

  await step('revoke', async () => {
    for (let round = 0; round < 5 && (await clinicGrants().count()) > 0; round += 1) {
      const form = clinicGrants().last().locator('form[action$="/revoke"]').first();
      await submitVia(page, form.locator(SUBMIT).first());
      expect(path(page) === '/grants', `after revoking the URL is ${page.url()}, not /grants`);
    }
    expect((await clinicGrants().count()) === 0, '/grants still offers to revoke a Vila Clinic grant');
  });

  await step('clinic-forgets', async () => {
    await openApp('clinic');
    await app.locator('#use-name').waitFor({ state: 'visible' });
    const greeting = await app.locator('#greeting').innerText();
    expect(!greeting.includes('Cleo'), `after the revocation the clinic still greets "${greeting}"`);
  });

  await step('grocer', async () => {
    await openApp('grocer');
    const quantity = app.locator('input.quantity').first();
    await quantity.waitFor();
    await quantity.fill('1');
    const total = await app.locator('#total').innerText();
    expect(amountIn(total) > 0, `the basket total reads "${total}"`);
  });

  await step('grocer-cashier', async () => {
    await app.getByRole('button', { name: 'Pay from wallet' }).click();
    const dialog = cashier('FreshMart');
    await dialog.waitFor({ state: 'visible' });
    grocerAmount = amountIn(await dialog.locator('#agora-cashier-amount').innerText());
    const total = amountIn(await app.locator('#total').innerText());
    expect(grocerAmount === total, `the cashier asks ${grocerAmount}, the basket said ${total}`);
  });

  await step('grocer-paid', async () => {
    const dialog = cashier('FreshMart');
    await dialog.getByRole('button', { name: /^Pay / }).click();
    await dialog.waitFor({ state: 'detached' });
    const status = app.locator('#status', { hasText: 'Paid' });
    await status.waitFor();
    expect(/ord_[A-Za-z0-9_-]+/.test(await status.innerText()), 'the shop names no order');
  });

  await step('wallet-final', async () => {
    const after = await balance();
    const paid = Math.round((walletAfterClinic - after) * 100) / 100;
    expect(paid === grocerAmount, `the wallet went from ${walletAfterClinic} to ${after}, not down by ${grocerAmount}`);
  });

  await step('wrong-origin', async () => {
    // The same portal opened at another address than its public_url: the host page says so.
    await page.goto(`${BASE}/apps/clinic`);
    await app.locator('#greeting').waitFor();
    expect((await page.locator('#origin-warning').count()) === 1, 'the host page has no #origin-warning');
    expect(!(await page.locator('#origin-warning').isVisible()), 'the warning shows at the right address');
    const other = BASE.replace('127.0.0.1', 'localhost');
    expect(other !== BASE, `the test runs at ${BASE}, not at 127.0.0.1`);
    const elsewhere = await (await browser.newContext({ viewport: DESKTOP })).newPage();
    await elsewhere.goto(`${other}/signin`);
    const form = elsewhere.locator('form#signin');
    await form.locator('input[name="email"]').fill(EMAIL);
    await form.locator('input[name="password"]').fill(PASSWORD);
    await submitVia(elsewhere, form.locator(SUBMIT).first());
    await elsewhere.goto(`${other}/apps/clinic`);
    const warning = elsewhere.locator('#origin-warning');
    await warning.waitFor({ state: 'visible' });
    const text = await warning.innerText();
    expect(text.includes(new URL(BASE).origin), `the warning does not name ${BASE}: "${text}"`);
    if (SHOTS) await elsewhere.screenshot({ path: join(SHOTS, `${currentStep()}-elsewhere.png`) });
    await elsewhere.close();
  });

  console.log(`portal-miniapp: all ${step.count()} steps passed`);
}

run(OVERALL_TIMEOUT_MS, main);
