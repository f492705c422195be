// Drives the playground in a real Chromium: Sign in (erpsim's login page, as anna.petrova), back to the
// playground, run the preloaded "Me" query, and check the token is in no browser storage.
// Usage: see run.sh beside this file.
const puppeteer = require('puppeteer-core');
const base = process.env.ERPGRAPH_URL || 'http://127.0.0.1:8080';
const fail = (msg) => { console.error('FAIL', msg); process.exit(1); };
(async () => {
  const browser = await puppeteer.launch({executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox','--disable-gpu','--disable-quic','--no-first-run','--disable-background-networking','--disable-component-update','--disable-sync']});
  const page = await browser.newPage();
  await page.setViewport({width: 1400, height: 900});
  page.on('console', m => console.log('console:', m.text()));
  await page.goto(base + '/', {waitUntil: 'networkidle0'});
  const [signIn] = await page.$$('xpath/.//button[contains(., "Sign in")]');
  await Promise.all([page.waitForNavigation({waitUntil: 'networkidle0'}), signIn.click()]);
  console.log('at', page.url().split('?')[0]);
  const [as] = await page.$$('xpath/.//button[contains(., "Sign in as anna.petrova")]');
  await Promise.all([page.waitForNavigation({waitUntil: 'networkidle0'}), as.click()]);
  await new Promise(r => setTimeout(r, 1500));
  console.log('back at', page.url());
  const header = await page.$eval('body', b => b.innerText.split('\n').slice(0, 3).join(' | '));
  console.log('header:', header);
  // run the Me query
  const run = await page.$('.graphiql-execute-button');
  await run.click();
  await new Promise(r => setTimeout(r, 2500));
  const result = await page.$eval('.result-window', e => e.innerText);
  console.log('result:', result.replace(/\s+/g, ' ').slice(0, 400));
  if (!header.includes('Signed in as Anna Petrova')) fail('not signed in: ' + header);
  if (!result.includes('"login": "anna.petrova"') || !result.includes('Alpha Trading')) fail('Me query did not answer for anna');
  const stored = await page.evaluate(() => JSON.stringify({local: Object.keys(localStorage), session: Object.keys(sessionStorage), cookie: document.cookie}));
  console.log('storage:', stored);
  const token = await page.evaluate(() => [...Object.values(localStorage), ...Object.values(sessionStorage)].some(v => /eyJ[\w-]+\.[\w-]+\./.test(v)));
  if (token) fail('a JWT is in browser storage');
  console.log('OK: playground sign-in, query and in-memory token');
  await page.screenshot({path: '/tmp/pg-signed.png'});
  await browser.close();
})().catch(e => { console.error('FAIL', e); process.exit(1); });
