// A coalition member follows the Mask Makers Alliance in the Agora portal, in a real browser:
// its steward signs in, opens Coalitions and the alliance's dashboard (the goal progress chart, the
// nine members), reads the executed proposal that admitted ClearShield Visors with its tally and
// outcome, then votes yes with a reason on the open proposal and sees the tally go up.
//
//   AGORA_URL=http://127.0.0.1:PORT AGORA_EMAIL=... AGORA_PASSWORD=... node portal-coalition.mjs
//
// Meant for `agora demo`'s Maskworks owner (mia@maskworks.example), who has not voted on the open
// proposal #4 "Let members change their vote until the close" yet; it can run once per demo.
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
    currentStep = `coalition-${String(count + 1).padStart(2, '0')}-${name}`;
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

  const COALITION = 'Mask Makers Alliance';
  const ADMIT = 'Admit ClearShield Visors';
  const OPEN = 'Let members change their vote until the close';
  const tallyYes = async () => Number((await page.locator('#tally-yes').innerText()).trim());
  let yesBefore = 0;

  await step('signin', async () => {
    await page.goto(`${BASE}/signin`);
    const form = page.locator('form#signin');
    await form.locator('input[name="email"]').fill(EMAIL);
    await form.locator('input[name="password"]').fill(PASSWORD);
    await submitVia(page, form.locator(SUBMIT).first());
    expect(path(page) === '/', `after signing in the URL is ${page.url()}, not /`);
  });

  await step('coalitions', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Coalitions' }).click();
    await page.waitForURL((url) => url.pathname === '/coalitions');
    const link = page.getByRole('link', { name: COALITION });
    expect((await link.count()) === 1, `/coalitions lists no link "${COALITION}"`);
  });

  await step('dashboard', async () => {
    await page.getByRole('link', { name: COALITION }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/coalitions/'));
    const name = (await page.locator('#coalition-name').innerText()).trim();
    expect(name === COALITION, `the dashboard is titled "${name}"`);
    const charts = page.locator('svg.progress-chart');
    expect((await charts.count()) >= 1, 'the dashboard shows no progress chart');
    const label = (await charts.first().locator('desc').textContent()) || '';
    expect(/pledged/.test(label), `the chart's text alternative says "${label}"`);
    expect((await charts.first().locator('polyline.pledged').count()) === 1, 'the chart draws no pledged line');
    const members = await page.locator('#members tbody tr').count();
    expect(members === 9, `the dashboard lists ${members} members, not 9`);
  });

  await step('executed-proposal', async () => {
    await page.getByRole('link', { name: ADMIT }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/proposals/'));
    const status = (await page.locator('#proposal-status').innerText()).trim();
    expect(status === 'executed', `"${ADMIT}" is "${status}", not "executed"`);
    expect((await tallyYes()) >= 1, 'the executed proposal shows no yes vote');
    expect((await page.locator('#votes tbody tr').count()) >= 1, 'the tally lists no counted vote');
    const outcome = await page.locator('#executions').innerText();
    expect(outcome.includes('admitted ClearShield Visors'), `the outcome reads "${outcome}"`);
    await page.goBack();
    await page.waitForURL((url) => url.pathname.startsWith('/coalitions/'));
  });

  await step('open-proposal', async () => {
    await page.getByRole('link', { name: OPEN }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/proposals/'));
    const status = (await page.locator('#proposal-status').innerText()).trim();
    expect(status === 'open', `"${OPEN}" is "${status}", not "open"`);
    yesBefore = await tallyYes();
    expect((await page.locator('form#vote-form').count()) === 1, 'the steward is offered no vote form');
  });

  await step('vote', async () => {
    const form = page.locator('form#vote-form');
    await form.getByLabel('Yes', { exact: true }).check();
    await form.getByLabel(/Reason/).fill('Members should be able to change their minds');
    await submitVia(page, form.locator(SUBMIT).first());
    expect(path(page).startsWith('/proposals/'), `after voting the URL is ${page.url()}`);
    const notice = page.locator('#vote-notice');
    expect((await notice.count()) === 1, 'no notice says the vote is counted');
    const yes = await tallyYes();
    expect(yes === yesBefore + 1, `the yes tally went from ${yesBefore} to ${yes}`);
    const row = page.locator('#votes tbody tr', { hasText: 'Maskworks' });
    expect((await row.count()) === 1, 'the counted votes do not list Maskworks');
  });

  console.log(`portal-coalition: all ${count} steps passed`);
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
