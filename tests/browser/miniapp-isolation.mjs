// A hostile mini-app stays inside its frame, in a real browser: the customer opens the fixture
// tests/browser/fixtures/hostile in the portal; it tries to read the portal's cookies, page and
// storage, to fetch /wallet with her session, to navigate the top window, to get a payment request
// of another app (FreshMart's, created for her here) paid, and to forge the portal's replies.
// Every attempt must come back "blocked", the portal page must stay where it was and her session
// must still work. Then a page on another origin (FreshMart's app origin, opened by the portal
// page) posts replies forged as the portal's to the framed SDK, which must ignore them.
//
//   AGORA_URL=http://127.0.0.1:PORT AGORA_EMAIL=... AGORA_PASSWORD=... node miniapp-isolation.mjs
//
// Meant for `agora demo` started with AGORA_TEST_HOSTILE_APP_DIR=tests/browser/fixtures/hostile
// (which registers and approves the fixture), signed in as its customer (cleo@customer.example).
// Optional: AGORA_SCREENSHOT_DIR, AGORA_TEST_CHROMIUM (default /usr/bin/chromium).
// Exits 0 when every step passed; otherwise prints the failed step and why, exits 1.
// It always stops by itself within OVERALL_TIMEOUT_MS.
import { join } from 'node:path';
import {
  BASE, expect, launch, path, run, signIn, steps,
} from './harness.mjs';

const OVERALL_TIMEOUT_MS = 120_000;
const STEP_TIMEOUT_MS = 15_000;
// The fixture waits up to 20 s for the portal to refuse a foreign payment request.
const ATTEMPTS_TIMEOUT_MS = 45_000;
const ATTEMPTS = ['parentCookie', 'parentDom', 'parentLocalStorage', 'ownSessionCookie',
  'fetchPortalWallet', 'foreignPaymentRequest', 'forgedReply', 'topNavigation'];
const FORGED_COUNT = 65;

async function main() {
  const browser = await launch(STEP_TIMEOUT_MS);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  const step = steps(page, 'isolation-');

  const appOrigin = () => page.evaluate(() => document.body.dataset.appOrigin);
  const hostileFrame = async () => {
    const frame = await (await page.locator('#miniapp-frame').elementHandle()).contentFrame();
    expect(frame, 'the host page has no mini-app frame');
    return frame;
  };
  // Waits for the fixture to finish, then checks that every attempt was blocked.
  const attemptsBlocked = async (frame) => {
    await frame.locator('#results[data-done="true"]').waitFor({ timeout: ATTEMPTS_TIMEOUT_MS });
    const results = JSON.parse(await frame.locator('#results').innerText());
    const missing = ATTEMPTS.filter((name) => !(name in results));
    expect(missing.length === 0, `the fixture did not try ${missing.join(', ')}: ${JSON.stringify(results)}`);
    const leaked = Object.entries(results).filter(([, outcome]) => !String(outcome).startsWith('blocked'));
    expect(leaked.length === 0, `not blocked: ${leaked.map(([name, outcome]) => `${name} → ${outcome}`).join('; ')}`);
    return results;
  };
  let hostileOrigin = '';
  let grocerOrigin = '';
  let foreignRequest = '';

  await step('signin', () => signIn(page));

  await step('foreign-request', async () => {
    // A pending payment request of FreshMart's shop app for this customer, as its host page would
    // create it: the hostile app must not be able to get it paid.
    await page.goto(`${BASE}/apps/grocer`);
    grocerOrigin = await appOrigin();
    expect(grocerOrigin && grocerOrigin !== BASE, `the grocer's app origin is "${grocerOrigin}"`);
    const created = await page.evaluate(async () => {
      const csrf = document.querySelector('meta[name="agora-csrf"]').content;
      const listings = await (await fetch('/apps/grocer/listings', { credentials: 'same-origin' })).json();
      const product = listings.listings.find((listing) => listing.kind === 'product');
      const response = await fetch('/apps/grocer/payment-requests', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify({ lines: [{ listing_id: product.id, quantity: 1 }] }),
      });
      return { status: response.status, body: await response.json() };
    });
    expect(created.status === 200 || created.status === 201,
      `creating FreshMart's payment request answered ${created.status}: ${JSON.stringify(created.body)}`);
    foreignRequest = created.body.id;
    expect(typeof foreignRequest === 'string', `the payment request has no id: ${JSON.stringify(created.body)}`);
  });

  await step('hostile', async () => {
    const documentResponse = page.waitForResponse((response) => {
      const url = new URL(response.url());
      return url.hostname.startsWith('hostile.') && url.pathname === '/';
    });
    await page.goto(`${BASE}/apps/hostile`);
    hostileOrigin = await appOrigin();
    expect(new URL(hostileOrigin).hostname.startsWith('hostile.'), `the hostile app's origin is "${hostileOrigin}"`);
    const sandbox = (await page.locator('#miniapp-frame').getAttribute('sandbox')) || '';
    expect(!/allow-top-navigation|allow-popups/.test(sandbox), `the frame's sandbox allows too much: "${sandbox}"`);
    const policy = (await (await documentResponse).allHeaders())['content-security-policy'] || '';
    for (const directive of ["script-src 'self'", "connect-src 'self'", 'frame-ancestors']) {
      expect(policy.includes(directive), `the mini-app's CSP lacks ${directive}: "${policy}"`);
    }
    await attemptsBlocked(await hostileFrame());
  });

  await step('foreign-payment-request', async () => {
    const frame = await hostileFrame();
    await frame.goto(`${hostileOrigin}/?pr=${encodeURIComponent(foreignRequest)}`);
    const results = await attemptsBlocked(frame);
    expect(results.foreignPaymentRequest.includes('bad_request'),
      `the foreign payment request was refused with "${results.foreignPaymentRequest}"`);
    expect((await page.locator('dialog[open]').count()) === 0, 'the portal opened a dialog for the hostile app');
    const state = await page.evaluate(async (id) => {
      const response = await fetch(`/apps/grocer/payment-requests/${encodeURIComponent(id)}`, { credentials: 'same-origin' });
      return (await response.json()).state;
    }, foreignRequest);
    expect(state === 'pending', `FreshMart's payment request is now ${state}, not pending`);
  });

  await step('top-unmoved', async () => {
    // The fixture tried to move the top window last; give a navigation time to start.
    await page.waitForTimeout(500);
    expect(path(page) === '/apps/hostile', `the top page moved to ${page.url()}`);
    expect(page.url().startsWith(BASE), `the top page is ${page.url()}`);
  });

  await step('impersonation', async () => {
    const frame = await hostileFrame();
    // A call that waits for the person: the portal's consent dialog stays open meanwhile.
    const before = await frame.evaluate(() => {
      window.forgery = { settled: null };
      window.agora.requestScopes(['profile']).then(
        (result) => { window.forgery.settled = { result }; },
        (error) => { window.forgery.settled = { code: error.code }; },
      );
      return window.agora.rejectedMessages;
    });
    const dialog = page.getByRole('dialog', { name: /^Share with / });
    await dialog.waitFor({ state: 'visible' });

    // Another origin gets hold of the framed SDK page through the portal page it was opened by.
    const [attacker] = await Promise.all([
      context.waitForEvent('page'),
      page.evaluate((url) => { window.open(url, 'attacker'); }, `${grocerOrigin}/`),
    ]);
    await attacker.waitForLoadState('load');
    const sent = await attacker.evaluate((total) => {
      if (!window.opener || window.opener.frames.length === 0) return 'no way to the frame';
      const target = window.opener.frames[0];
      for (let id = 0; id < total; id += 1) {
        target.postMessage({ agora: 1, id, result: { granted: ['profile', 'email'], forged: true } }, '*');
      }
      return 'sent';
    }, FORGED_COUNT);
    // The frame's own origin is not the portal's either.
    await frame.evaluate((total) => {
      for (let id = 0; id < total; id += 1) {
        window.postMessage({ agora: 1, id, result: { granted: ['profile', 'email'], forged: true } }, '*');
      }
    }, FORGED_COUNT);
    const expected = before + FORGED_COUNT * (sent === 'sent' ? 2 : 1);
    await frame.waitForFunction((total) => window.agora.rejectedMessages >= total, expected, { timeout: 5_000 })
      .catch(() => {});
    const after = await frame.evaluate(() => ({ rejected: window.agora.rejectedMessages, settled: window.forgery.settled }));
    expect(after.rejected >= expected,
      `the SDK ignored ${after.rejected - before} forged replies, not ${expected - before} (opener: ${sent})`);
    expect(after.settled === null, `a forged reply settled the pending call: ${JSON.stringify(after.settled)}`);
    await attacker.close();

    await dialog.getByRole('button', { name: 'Don\'t allow' }).click();
    await frame.waitForFunction(() => window.forgery.settled !== null);
    const settled = await frame.evaluate(() => window.forgery.settled);
    expect(settled.code === 'denied', `after "Don't allow" the call settled with ${JSON.stringify(settled)}`);
    if (sent !== 'sent') console.log(`note: the other origin could not reach the frame (${sent}); only the frame's own forgeries were posted`);
  });

  await step('session', async () => {
    await page.goto(`${BASE}/wallet`);
    expect(path(page) === '/wallet', `/wallet sent the customer to ${page.url()}`);
    await page.locator('#wallet-balance').waitFor();
  });

  console.log(`miniapp-isolation: all ${step.count()} steps passed`);
}

run(OVERALL_TIMEOUT_MS, main);
