// Browser test of the review dashboard in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core): log in, assign a domain to the
// first video in the queue, and see its row leave the queue; the security
// headers (CSP, framing, nosniff, referrer, no-store) arrive and the CSP lets
// the page's own hashed style through.
//
// Needs a running `recon-companion serve`: BASE_URL (e.g. http://127.0.0.1:8787)
// and PASSWORD in the environment. Exits 0 on success, 1 on any failure, and
// prints one JSON line with what it saw. tests/tests/server_browser.rs starts
// the server on a demo dataset and runs this script.
import { chromium } from 'playwright-core';

const BASE_URL = process.env.BASE_URL;
const PASSWORD = process.env.PASSWORD;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

if (!BASE_URL || !PASSWORD) fail('BASE_URL and PASSWORD must be set');

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const seen = {};
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(15000);
  // A CSP that blocked the page's own style (or anything else) is a failure.
  const cspViolations = [];
  page.on('console', (m) => { if (/Content[- ]Security[- ]Policy/i.test(m.text())) cspViolations.push(m.text()); });

  // Not logged in: the review page sends us to the login form.
  await page.goto(`${BASE_URL}/peertube/review`);
  if (!page.url().includes('/login')) fail(`expected the login page, got ${page.url()}`);

  await page.fill('#password', 'not the password');
  await page.click('#login');
  const err = await page.textContent('[role=alert]');
  if (!/Wrong password/.test(err || '')) fail(`wrong password not reported: ${err}`);

  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(/\/peertube\/review/), page.click('#login')]);

  // The security headers on an authenticated page, as the browser received them.
  const resp = await page.goto(`${BASE_URL}/peertube/review`);
  const h = resp.headers();
  seen.headers = {
    csp: h['content-security-policy'], xfo: h['x-frame-options'], nosniff: h['x-content-type-options'],
    referrer: h['referrer-policy'], cache: h['cache-control'],
  };
  if (!/frame-ancestors 'none'/.test(h['content-security-policy'] || '')) fail(`no frame-ancestors in CSP: ${h['content-security-policy']}`);
  if (/unsafe-inline/.test(h['content-security-policy'] || '')) fail('CSP allows unsafe-inline');
  if (h['x-frame-options'] !== 'DENY') fail(`X-Frame-Options: ${h['x-frame-options']}`);
  if (h['x-content-type-options'] !== 'nosniff') fail(`X-Content-Type-Options: ${h['x-content-type-options']}`);
  if (h['referrer-policy'] !== 'same-origin') fail(`Referrer-Policy: ${h['referrer-policy']}`);
  if (!/no-store/.test(h['cache-control'] || '')) fail(`Cache-Control: ${h['cache-control']}`);
  // The hashed inline style applies (the header bar is dark), so the CSP hash matches.
  seen.header_bg = await page.evaluate(() => getComputedStyle(document.querySelector('header')).backgroundColor);
  if (seen.header_bg !== 'rgb(29, 35, 39)') fail(`the page's style was blocked: header background ${seen.header_bg}`);
  const rows = page.locator('#review-table tbody tr[data-hash]');
  seen.rows_before = await rows.count();
  if (seen.rows_before === 0) fail('the review queue is empty: the demo data should hold tied_manual videos');
  seen.card_before = Number((await page.textContent('#card-manual')).trim());

  const row = rows.first();
  const hash = await row.getAttribute('data-hash');
  seen.hash = hash;
  seen.fallback = (await row.locator('td').nth(2).textContent()).trim();
  // Pick a domain other than the fallback, so the choice is visibly a person's.
  const select = row.locator('select');
  const options = await select.locator('option').allTextContents();
  const choice = options.find((o) => o.trim() !== seen.fallback) || options[0];
  seen.domain = choice.trim();
  await select.selectOption({ label: seen.domain });
  await Promise.all([page.waitForURL(/\/peertube\/review/), row.locator('button[type=submit]').click()]);

  // The row left the queue, the count went down, and the outcome is reported.
  seen.still_listed = await page.locator(`tr[data-hash="${hash}"]`).count();
  if (seen.still_listed !== 0) fail(`row ${hash} is still in the queue`);
  seen.card_after = Number((await page.textContent('#card-manual')).trim());
  if (seen.card_after !== seen.card_before - 1) fail(`manual-review card went ${seen.card_before} -> ${seen.card_after}`);
  seen.flash = (await page.textContent('.flash')).trim();
  if (!seen.flash.includes(seen.domain) || !/assigned/.test(seen.flash)) fail(`no assignment message: ${seen.flash}`);

  // The detail page shows the person's choice.
  await page.goto(`${BASE_URL}/peertube/item/${hash}`);
  const stored = await page.textContent('body');
  if (!stored.includes('manual_assigned')) fail('detail page does not show manual_assigned');
  if (cspViolations.length) fail(`CSP violations: ${cspViolations.join(' | ')}`);
  console.log(JSON.stringify({ ok: true, ...seen }));
} catch (e) {
  fail(`${e && e.stack ? e.stack : e}`);
} finally {
  await browser.close();
}
