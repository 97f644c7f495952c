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
import {
  SUBMIT, expect, launch, path, run, signIn, steps, submitVia,
} from './harness.mjs';

const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;

async function main() {
  const browser = await launch(STEP_TIMEOUT_MS);
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  const step = steps(page, 'coalition-');

  const COALITION = 'Mask Makers Alliance';
  const ADMIT = 'Admit ClearShield Visors';
  const OPEN = 'Let members change their vote until the close';
  const tallyYes = async () => Number((await page.locator('#tally-yes').innerText()).trim());
  let yesBefore = 0;

  await step('signin', () => signIn(page));

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

  console.log(`portal-coalition: all ${step.count()} steps passed`);
}

run(OVERALL_TIMEOUT_MS, main);
