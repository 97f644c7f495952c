// Signs in to the Agora portal in a real browser, opens the audit log, signs out.
//
//   AGORA_URL=http://127.0.0.1:PORT AGORA_EMAIL=... AGORA_PASSWORD=... node portal-signin.mjs
//
// Optional: AGORA_SCREENSHOT_DIR (a PNG after each step: 01-signin.png, ...),
// AGORA_TEST_CHROMIUM (default /usr/bin/chromium, Debian's Chromium).
// Exits 0 when every step passed; otherwise prints the failed step and why, exits 1.
// It always stops by itself within OVERALL_TIMEOUT_MS.
import { join } from 'node:path';
import {
  BASE, EMAIL, PASSWORD, SUBMIT, expect, launch, path, run, steps, submitVia,
} from './harness.mjs';

const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;

// The hard stop: whatever hangs, the script ends.
const visible = (locator) =>
  locator.first().waitFor({ state: 'visible' }).then(() => true, () => false);

// Submits by clicking `button` and waits until the page it leads to has loaded.
async function fillSignin(page, password) {
  const form = page.locator('form#signin');
  await form.locator('input[name="email"]').fill(EMAIL);
  await form.locator('input[name="password"]').fill(password);
  await submitVia(page, form.locator(SUBMIT).first());
}

async function main() {
  const browser = await launch(STEP_TIMEOUT_MS);
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  const step = steps(page, '');

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

  console.log(`portal-signin: all ${step.count()} steps passed`);
}

run(OVERALL_TIMEOUT_MS, main);
