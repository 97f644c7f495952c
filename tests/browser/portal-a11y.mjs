// The superapp's pages checked for accessibility in a real browser with axe-core (WCAG 2.1 A and
// AA rules: labels, names, landmarks, contrast, ARIA), at a desktop and a phone's width, for the
// customer (home, directory, a mini-app with its consent dialog open, wallet, orders, grants,
// notifications) and the partner (console); and the customer's home used with the keyboard only.
//
//   AGORA_URL=http://127.0.0.1:PORT AGORA_EMAIL=... AGORA_PASSWORD=... node portal-a11y.mjs
//
// Meant for `agora demo`: the customer cleo@customer.example and the partner vera@vilaclinic.example.
// Optional: AGORA_PARTNER_EMAIL (default vera@vilaclinic.example), AGORA_SCREENSHOT_DIR,
// AGORA_TEST_CHROMIUM (default /usr/bin/chromium).
// Exits 0 when every page passed; otherwise prints every violation, exits 1.
// It always stops by itself within OVERALL_TIMEOUT_MS.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  BASE, EMAIL, SHOTS, currentStep, enterStep, expect, launch, run, signIn,
} from './harness.mjs';

const OVERALL_TIMEOUT_MS = 90_000;
const STEP_TIMEOUT_MS = 15_000;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 375, height: 740 };
// Only what makes a page unusable or hard to use for someone counts; `minor` findings are printed.
const FAILING_IMPACTS = new Set(['serious', 'critical', 'moderate']);

const PARTNER_EMAIL = process.env.AGORA_PARTNER_EMAIL || 'vera@vilaclinic.example';
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/// Runs axe on the page (the mini-app's own frame excluded: it is the partner's content) and
/// returns the violations that count, described one per line.
async function audit(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    // Evaluated through the DevTools protocol, which the portal's strict CSP does not govern.
    await page.evaluate(AXE);
  }
  const result = await page.evaluate(async () => window.axe.run(
    { exclude: [['#miniapp-frame']] },
    { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } },
  ));
  // A check that ran no rule would pass anything.
  expect(result.passes.length >= 10, `axe ran only ${result.passes.length} passing rules`);
  const lines = [];
  for (const violation of result.violations) {
    const where = violation.nodes.slice(0, 3).map((node) => node.target.join(' ')).join(', ');
    const line = `${violation.impact} ${violation.id}: ${violation.help} (${violation.nodes.length} × ${where})`;
    if (FAILING_IMPACTS.has(violation.impact)) lines.push(line);
    else console.log(`     note: ${line}`);
  }
  return lines;
}

async function main() {
  const browser = await launch(STEP_TIMEOUT_MS);
  let count = 0;
  const failures = [];

  async function check(page, name, prepare) {
    enterStep(`a11y-${String(count + 1).padStart(2, '0')}-${name}`);
    await prepare();
    for (const [width, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      await page.setViewportSize(viewport);
      const found = await audit(page);
      if (SHOTS && width === 'phone') {
        await page.screenshot({ path: join(SHOTS, `${currentStep()}-phone.png`), fullPage: true });
      }
      for (const line of found) failures.push(`${currentStep()} (${width}): ${line}`);
    }
    await page.setViewportSize(DESKTOP);
    count += 1;
    console.log(`${failures.some((line) => line.startsWith(currentStep())) ? 'FAIL' : 'ok  '} ${currentStep()}`);
  }

  const customer = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  customer.setDefaultTimeout(STEP_TIMEOUT_MS);
  await signIn(customer, EMAIL);
  for (const [name, path] of [['home', '/'], ['directory', '/apps?category=health'],
    ['wallet', '/wallet'], ['orders', '/orders'], ['grants', '/grants'],
    ['notifications', '/notifications']]) {
    await check(customer, name, () => customer.goto(`${BASE}${path}`));
  }
  await check(customer, 'mini-app-and-consent-dialog', async () => {
    await customer.goto(`${BASE}/apps/clinic`);
    const app = customer.frameLocator('#miniapp-frame');
    await app.getByRole('button', { name: 'Let Vila Clinic use your name' }).click();
    await customer.getByRole('dialog', { name: /^Share with / }).waitFor({ state: 'visible' });
  });
  await check(customer, 'cashier-dialog', async () => {
    // Declined with the keyboard: Escape closes the consent dialog.
    await customer.keyboard.press('Escape');
    await customer.getByRole('dialog', { name: /^Share with / }).waitFor({ state: 'detached' });
    const app = customer.frameLocator('#miniapp-frame');
    await app.locator('input[name="slot"]').first().check();
    await app.getByRole('button', { name: 'Book and pay' }).click();
    await customer.getByRole('dialog', { name: 'Pay Vila Clinic' }).waitFor({ state: 'visible' });
  });

  // The keyboard alone reaches the directory's search and a mini-app, with the focus visible.
  enterStep(`a11y-${String(count + 1).padStart(2, '0')}-keyboard`);
  await customer.goto(`${BASE}/`);
  const reached = [];
  for (let press = 0; press < 40; press += 1) {
    await customer.keyboard.press('Tab');
    const focused = await customer.evaluate(() => {
      const element = document.activeElement;
      if (!element || element === document.body) return null;
      const style = getComputedStyle(element);
      const visible = style.outlineStyle !== 'none' || style.boxShadow !== 'none';
      return { tag: element.tagName, name: element.getAttribute('name'),
        href: element.getAttribute('href'), visible };
    });
    if (focused) reached.push(focused);
  }
  const search = reached.find((element) => element.name === 'q');
  const app = reached.find((element) => element.href === '/apps/clinic');
  if (!search) failures.push(`${currentStep()}: Tab never reaches the directory's search box`);
  if (!app) failures.push(`${currentStep()}: Tab never reaches the clinic's mini-app link`);
  const invisible = reached.filter((element) => !element.visible);
  if (invisible.length > 0) {
    failures.push(`${currentStep()}: the focus is not visible on ${invisible.map((e) => e.href || e.name || e.tag).join(', ')}`);
  }
  count += 1;
  console.log(`${failures.some((line) => line.startsWith(currentStep())) ? 'FAIL' : 'ok  '} ${currentStep()}`);

  const partner = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  partner.setDefaultTimeout(STEP_TIMEOUT_MS);
  await signIn(partner, PARTNER_EMAIL);
  await check(partner, 'console', () => partner.goto(`${BASE}/console/apps`));

  if (failures.length > 0) {
    throw new Error(`${failures.length} accessibility problems:\n${failures.join('\n')}`);
  }
  console.log(`portal-a11y: all ${count} pages passed`);
}

run(OVERALL_TIMEOUT_MS, main);
