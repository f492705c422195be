// The playground in a real Chromium: Sign in (erpsim's login page, PKCE in
// the browser), run the preloaded "Me" query, and check the token stays in
// JavaScript memory only (no storage). Environment: ERPGRAPH_URL.
import { base, fail, ok, launch, noTokenInJavaScript } from './lib.mjs';

const { context, close } = await launch();
try {
  const page = await context.newPage();
  page.on('console', (m) => console.log('console:', m.text()));
  await page.goto(base + '/');
  await Promise.all([page.waitForURL(/\/id\/connect\/authorize/), page.click('button:has-text("Sign in")')]);
  await Promise.all([page.waitForURL((u) => u.origin === new URL(base).origin), page.click('button:has-text("Sign in as anna.petrova")')]);
  await page.locator('text=Signed in as Anna Petrova').waitFor();
  ok('playground signed in as Anna Petrova');
  await page.click('.graphiql-execute-button');
  const result = page.locator('.result-window');
  await result.getByText('"anna.petrova"', { exact: true }).waitFor();
  const text = (await result.innerText()).replace(/\s+/g, ' ');
  if (!text.includes('Alpha Trading')) fail('Me query did not answer for anna: ' + text.slice(0, 300));
  ok('Me query: ' + text.slice(0, 120));
  await noTokenInJavaScript(page, 'playground signed in');
  console.log('PASS playground');
} finally {
  await close();
}
