// A partner works in the Agora portal's console in a real browser: finds its live mini-app,
// has a broken file refused with the reason, registers a second mini-app from a manifest and
// copies its client secret (shown once), uploads a second version that waits for review.
//
//   AGORA_URL=http://127.0.0.1:PORT AGORA_EMAIL=... AGORA_PASSWORD=... node portal-console.mjs
//
// Meant for `agora demo`'s clinic owner (vera@vilaclinic.example), whose organisation serves the
// `clinic` mini-app, version 1, approved by the operator.
// Optional: AGORA_SCREENSHOT_DIR, AGORA_TEST_CHROMIUM (default /usr/bin/chromium).
// Exits 0 when every step passed; otherwise prints the failed step and why, exits 1.
// It always stops by itself within OVERALL_TIMEOUT_MS.
import {
  BASE, SUBMIT, expect, launch, run, signIn, steps, submitVia,
} from './harness.mjs';

const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;

/// A manifest whose entry is the partner's own site: the console takes it as a .json file.
function manifest(version) {
  return Buffer.from(JSON.stringify({
    slug: 'clinic-labs',
    name: 'Vila Clinic Labs',
    description: `Lab results, version ${version}.`,
    category: 'health',
    entry: { url: 'https://labs.vilaclinic.example/app' },
    scopes: [{ scope: 'profile', reason: 'To put your name on your results.' }],
    redirect_uris: ['https://labs.vilaclinic.example/callback'],
  }));
}

async function main() {
  const browser = await launch(STEP_TIMEOUT_MS);
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  const step = steps(page, 'console-');

  const registerForm = () => page.locator('form[action="/console/apps"]');
  let secret = '';

  await step('signin', () => signIn(page));

  await step('live-app', async () => {
    await page.goto(`${BASE}/console/apps`);
    const clinic = page.locator('[data-app="clinic"]');
    expect((await clinic.count()) === 1, 'the console does not show the clinic mini-app');
    const text = await clinic.innerText();
    expect(text.includes('Serving version 1.'), `the clinic's card says: ${text}`);
  });

  await step('broken-file-refused', async () => {
    await registerForm().locator('input[type="file"]').setInputFiles({
      name: 'broken.zip', mimeType: 'application/zip', buffer: Buffer.from('PK this is not a zip'),
    });
    await submitVia(page, registerForm().locator(SUBMIT).first());
    const alert = page.getByRole('alert');
    expect((await alert.count()) === 1, 'no alert after uploading a broken zip');
    const text = (await alert.innerText()).trim();
    expect(text.length > 10, `the alert says only "${text}"`);
    expect((await page.locator('[data-app="clinic-labs"]').count()) === 0, 'a broken file registered an app');
  });

  await step('register', async () => {
    await registerForm().locator('input[type="file"]').setInputFiles({
      name: 'clinic-labs.json', mimeType: 'application/json', buffer: manifest(1),
    });
    await submitVia(page, registerForm().locator(SUBMIT).first());
    const notice = (await page.getByRole('status').first().innerText()).trim();
    expect(notice.startsWith('Registered Vila Clinic Labs'), `the notice says "${notice}"`);
    secret = (await page.locator('#registered .client-secret').innerText()).trim();
    expect(secret.length >= 32, `the client secret shown is "${secret}"`);
    expect((await page.locator('[data-app="clinic-labs"]').count()) === 1, 'the new app is not listed');
  });

  await step('upload-version', async () => {
    const card = page.locator('[data-app="clinic-labs"]');
    const form = card.locator('form[enctype="multipart/form-data"]');
    await form.locator('input[type="file"]').setInputFiles({
      name: 'clinic-labs-v2.json', mimeType: 'application/json', buffer: manifest(2),
    });
    await submitVia(page, form.locator(SUBMIT).first());
    const notice = (await page.getByRole('status').first().innerText()).trim();
    expect(notice === 'Uploaded version 2: pending.', `the notice says "${notice}"`);
    const rows = await page.locator('[data-app="clinic-labs"] tbody tr').count();
    expect(rows === 2, `the new app lists ${rows} versions, not 2`);
  });

  await step('secret-shown-once', async () => {
    await page.goto(`${BASE}/console/apps`);
    const html = await page.content();
    expect(!html.includes(secret), 'the client secret is shown again');
    expect((await page.locator('#registered').count()) === 0, 'the secret panel is still there');
  });

  console.log(`portal-console: all ${step.count()} steps passed`);
}

run(OVERALL_TIMEOUT_MS, main);
