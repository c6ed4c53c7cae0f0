// The console in a real browser: Debian's chromium, headless, driven by playwright-core (no browser
// download). Started by tests/console_e2e.rs with a running `tandem run` whose console holds a
// parked conflict; this script logs in with the token, finds the conflict in the review queue,
// resolves it with a note, and watches the queue empty. A screenshot of each page goes to SHOTS.
//
// Environment: CONSOLE_URL, CONSOLE_TOKEN, CONFLICT (node/id), CHROMIUM (executable), SHOTS (dir).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const need = (name) => {
  const v = process.env[name];
  if (!v) { console.error(`e2e: ${name} is not set`); process.exit(2); }
  return v;
};
const base = need('CONSOLE_URL');
const token = need('CONSOLE_TOKEN');
const conflict = need('CONFLICT');
const shots = need('SHOTS');
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: need('CHROMIUM'),
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage',
         '--disable-component-update', '--no-first-run'],
});
const page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
// The pages fetch nothing but themselves: any other request is a failure.
const foreign = [];
page.on('request', (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
page.on('dialog', (d) => d.accept());
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const expectText = async (selector, text) => {
  const got = await page.locator(selector).first().innerText();
  if (!got.includes(text)) throw new Error(`${selector} says ${JSON.stringify(got)}, expected ${JSON.stringify(text)}`);
};

let step = 'start';
try {
  step = 'the login page';
  await page.goto(`${base}/`);
  if (!page.url().includes('/login')) throw new Error(`not sent to the login page: ${page.url()}`);
  await shot('01-login');
  await page.fill('input[name=token]', 'not-the-token-not-the-token');
  await page.click('button:has-text("Log in")');
  await expectText('.msg.err', "not the console's token");

  step = 'logging in';
  await page.fill('input[name=token]', token);
  await page.fill('input[name=name]', 'Ana Steward');
  await page.click('button:has-text("Log in")');
  await expectText('h1', 'Overview');
  await expectText('main', 'crm_to_helpdesk');
  await shot('02-overview');

  step = 'the review queue';
  await page.click('header a:has-text("Review queue")');
  await expectText('h1', 'Review queue');
  const link = page.locator(`a[href="/conflicts/${conflict}"]`);
  if (await link.count() !== 1) throw new Error(`conflict ${conflict} not in the review queue`);
  await shot('03-queue');

  step = 'the conflict';
  await link.click();
  await expectText('h1', `Conflict ${conflict.split('/')[1]} on ${conflict.split('/')[0]}`);
  const differing = await page.locator('#images tr.diff th').allInnerTexts();
  if (differing.join(',') !== 'name') throw new Error(`highlighted fields: ${differing}`);
  await shot('04-conflict');

  step = 'resolving without a note';
  await page.check('input[name=how][value=incoming]');
  // The browser refuses the empty required note; the server would too.
  await page.click('#resolve button');
  if (!page.url().endsWith(`/conflicts/${conflict}`)) throw new Error(`sent without a note: ${page.url()}`);

  step = 'resolving';
  await page.fill('textarea[name=note]', 'crm holds the signed contract (browser test)');
  await page.click('#resolve button');
  await page.waitForURL(/done=resolved/);
  await expectText('.msg.done', 'Done: resolved');
  await shot('05-resolved');

  step = 'watching the queue empty';
  const deadline = Date.now() + 30000;
  for (;;) {
    await page.goto(`${base}/conflicts?state=open`);
    if ((await page.locator('main').innerText()).includes('0 record(s)')) break;
    if (Date.now() > deadline) throw new Error('the review queue did not empty within 30 s');
    await page.waitForTimeout(500);
  }
  await shot('06-queue-empty');

  step = 'the audit log';
  await page.click('header a:has-text("Audit log")');
  await expectText('main', 'crm holds the signed contract (browser test)');
  await expectText('main', 'Ana Steward');
  await shot('07-audit');

  step = 'dead letters and rule set';
  await page.click('header a:has-text("Dead letters")');
  await expectText('h1', 'Dead letters');
  await shot('08-dead-letters');
  await page.click('header a:has-text("Rule set")');
  await expectText('h1', 'Rule set');
  await expectText('main', 'manual (prefer helpdesk)');
  await shot('09-rules');

  step = 'logging out';
  await page.click('header button:has-text("Log out")');
  await page.goto(`${base}/conflicts`);
  if (!page.url().includes('/login')) throw new Error(`still logged in after logout: ${page.url()}`);
  if (foreign.length) throw new Error(`requests outside the console: ${foreign.join(', ')}`);
  console.log(`e2e: ok (screenshots in ${shots})`);
  await browser.close();
} catch (e) {
  console.error(`e2e: failed at ${step}: ${e.message}`);
  await shot('failure').catch(() => {});
  await browser.close();
  process.exit(1);
}
