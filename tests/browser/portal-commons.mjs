// A brand works with the data commons in the Agora portal, in a real browser: its owner signs
// in, opens the protocol under which a grocer shares its store sales, runs a governed query in
// the console and sees a result row, runs a query that would output customers' rows and reads the
// rule that refused it, and finds both in the query log.
//
//   AGORA_URL=http://127.0.0.1:PORT AGORA_EMAIL=... AGORA_PASSWORD=... node portal-commons.mjs
//
// Meant for `agora demo`'s brand owner (carla@brightbrew.example), a consumer of FreshMart's
// `store_sales` under the protocol `freshmart-sales-for-brands` (purposes assortment, forecasting).
// Optional: AGORA_SCREENSHOT_DIR, AGORA_TEST_CHROMIUM (default /usr/bin/chromium).
// Exits 0 when every step passed; otherwise prints the failed step and why, exits 1.
// It always stops by itself within OVERALL_TIMEOUT_MS.
import {
  BASE, SUBMIT, expect, launch, path, run, signIn, steps, submitVia,
} from './harness.mjs';

const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;

let currentRule = '';

async function main() {
  const browser = await launch(STEP_TIMEOUT_MS);
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  const step = steps(page, 'commons-');

  const PROTOCOL = 'freshmart-sales-for-brands';
  const ALLOWED_SQL = 'SELECT brand, SUM(units) AS units FROM store_sales GROUP BY brand ORDER BY brand';
  const REFUSED_SQL = 'SELECT customer_id FROM store_sales';

  async function runQuery(purpose, sql) {
    await page.goto(`${BASE}/query`);
    const form = page.locator('form#query-form');
    await form.locator('input[name="purpose"]').fill(purpose);
    await form.locator('textarea[name="sql"]').fill(sql);
    await submitVia(page, form.locator(SUBMIT).first());
    expect(path(page) === '/query', `after running the query the URL is ${page.url()}, not /query`);
  }

  await step('signin', () => signIn(page));

  await step('protocol', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Protocols' }).click();
    await page.waitForURL((url) => url.pathname === '/protocols');
    const link = page.getByRole('link', { name: PROTOCOL });
    expect((await link.count()) === 1, `/protocols lists no link "${PROTOCOL}"`);
    await link.click();
    await page.waitForURL((url) => url.pathname.startsWith('/protocols/'));
    const state = (await page.locator('#protocol-state').innerText()).trim();
    expect(state === 'active', `the protocol is "${state}", not "active"`);
    const hash = (await page.locator('#content-hash').innerText()).trim();
    expect(/^[0-9a-f]{64}$/.test(hash), `the content hash shown is "${hash}"`);
    const document = await page.locator('#document').innerText();
    expect(document.includes('"store_sales"'), 'the document shown does not name store_sales');
    expect((await page.locator('form#pause').count()) === 1, 'a party sees no Pause button');
  });

  await step('answer', async () => {
    await runQuery('assortment', ALLOWED_SQL);
    const rows = page.locator('#result-rows tbody tr');
    expect((await rows.count()) >= 1, 'the governed query shows no result row');
    const first = (await rows.first().innerText()).trim();
    expect(first.length > 0, 'the first result row is empty');
    const used = await page.locator('#result-protocols').innerText();
    expect(used.includes(PROTOCOL), `the answer names protocols "${used}", not ${PROTOCOL}`);
    expect((await page.locator('#rows-suppressed').count()) === 1, 'the answer does not say how many rows were suppressed');
  });

  await step('refusal', async () => {
    await runQuery('assortment', REFUSED_SQL);
    expect((await page.locator('#result').count()) === 0, 'a query outputting customer ids was answered');
    const rule = (await page.locator('#refusal-rule').innerText()).trim();
    expect(/^[a-z_]+$/.test(rule), `the refusal names no rule: "${rule}"`);
    const message = (await page.locator('#refusal-message').innerText()).trim();
    expect(message.length > 0, 'the refusal does not say why');
    const kept = await page.locator('textarea[name="sql"]').inputValue();
    expect(kept === REFUSED_SQL, `the console did not keep the SQL to fix: "${kept}"`);
    currentRule = rule;
  });

  await step('query-log', async () => {
    await page.goto(`${BASE}/queries`);
    const row = page.locator('#queries tbody tr', { hasText: REFUSED_SQL }).first();
    expect((await row.count()) === 1, 'the query log does not list the refused query');
    const rule = (await row.locator('td.rule code').innerText()).trim();
    expect(rule === currentRule, `the log's rule is "${rule}", not "${currentRule}"`);
  });

  console.log(`portal-commons: all ${step.count()} steps passed`);
}

run(OVERALL_TIMEOUT_MS, main);
