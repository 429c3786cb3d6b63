// Opens weir's dashboard in Debian's chromium (headless) while clicks flow into the pipeline,
// and checks what a user would look at: the connection says live, the top-K list fills and
// then changes, the chart draws lines, the health table counts the source's events.
//
//   node tests/browser/dashboard.mjs http://127.0.0.1:PORT/ out/dashboard.png
//
// Exit 0 when every check passed; 1 with the reason otherwise. The screenshot is saved
// either way (it is the test's artifact).
import { chromium } from 'playwright-core';

const [url, shot] = process.argv.slice(2);
if (!url || !shot) {
  console.error('usage: node dashboard.mjs <dashboard url> <screenshot.png>');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

const report = {};
let failed = null;
try {
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'live', null, { timeout: 15000 });

  // The top-K list fills.
  const list = '[data-output="top_cart"] ol.top li';
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length >= 3, list, { timeout: 30000 });
  const text = () => page.$$eval(list, (lis) => lis.map((li) => li.textContent).join(' | '));
  const end = () => page.$eval('[data-output="top_cart"]', (p) => p.dataset.windowEnd);
  const first = { end: await end(), text: await text() };
  report.first = first;

  // ... and changes while events flow: a later window, drawn with other counts or keys.
  await page.waitForFunction(
    ([sel, before]) => {
      const p = document.querySelector('[data-output="top_cart"]');
      const now = [...document.querySelectorAll(sel)].map((li) => li.textContent).join(' | ');
      return p.dataset.windowEnd !== before.end && now !== before.text;
    },
    [list, first],
    { timeout: 30000 },
  );
  report.later = { end: await end(), text: await text() };
  report.moves = await page.$$eval('[data-output="top_cart"] .move', (m) => m.map((x) => x.textContent).filter(Boolean));

  // The chart draws: at least 3 windows, and its canvas has painted pixels.
  await page.waitForFunction(() => {
    const p = document.querySelector('[data-output="per_action"]');
    return p && Number(p.dataset.points || 0) >= 3 && p.querySelector('canvas');
  }, null, { timeout: 30000 });
  report.painted = await page.$eval('[data-output="per_action"] canvas', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  if (report.painted < 500) throw new Error(`the chart painted only ${report.painted} pixels`);
  report.legend = await page.$$eval('[data-output="per_action"] .u-legend .u-label', (l) => l.map((x) => x.textContent));

  // The health table counts the source's events.
  await page.waitForFunction(() => {
    const tr = document.querySelector('#nodes tr[data-node="clicks"]');
    return tr && tr.children[4].textContent.replace(/,/g, '') > 0;
  }, null, { timeout: 15000 });
  report.health = await page.$eval('#nodes tr[data-node="clicks"]', (tr) => [...tr.children].map((td) => td.textContent));
  if (errors.length) throw new Error('the page logged errors: ' + errors.join('; '));
} catch (e) {
  failed = e;
}
await page.screenshot({ path: shot, fullPage: true });
await browser.close();
console.log(JSON.stringify(report));
if (failed) {
  console.error('dashboard check failed: ' + failed.message + (errors.length ? ' (page errors: ' + errors.join('; ') + ')' : ''));
  process.exit(1);
}
