// The example portal in a real Chromium: sign in through erpsim as a demo
// user, see that user's orders, open one, (with writes on) place an order,
// check no token is readable from JavaScript, sign out, and be refused.
// Environment: ERPGRAPH_URL, LOGIN, EXPECT_ORDERS (document numbers of the
// user's latest orders, newest first), WRITES=on (place an order).
import { base, fail, ok, launch, noTokenInJavaScript } from './lib.mjs';

const login = process.env.LOGIN || 'anna.petrova';
const expected = (process.env.EXPECT_ORDERS || '').split(',').filter(Boolean);
const { context, close } = await launch();
try {
  const page = await context.newPage();
  page.on('console', (m) => console.log('console:', m.text()));
  page.on('pageerror', (e) => fail('page error: ' + e.message));

  await page.goto(base + '/portal/');
  await page.locator('#sign-in').waitFor();
  ok('signed out: the portal offers "Sign in"');
  await noTokenInJavaScript(page, 'before sign-in');

  await Promise.all([page.waitForURL(/\/id\/connect\/authorize/), page.click('#sign-in')]);
  ok('at the identity server: ' + new URL(page.url()).pathname);
  await Promise.all([page.waitForURL((u) => u.pathname.startsWith('/portal/')),
    page.click(`button:has-text("Sign in as ${login}")`)]);
  const name = (await page.locator('#user-name').textContent()).trim();
  ok(`back at the portal, signed in as ${name}`);

  const rows = page.locator('#recent-orders tr[data-order]');
  await rows.first().waitFor();
  const shown = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.order));
  if (expected.length && shown.join(',') !== expected.slice(0, shown.length).join(',')) {
    fail(`recent orders ${shown} are not ${login}'s latest ${expected}`);
  }
  ok(`dashboard: ${login}'s recent orders ${shown.join(', ')}`);

  await rows.first().locator('a').click();
  await page.locator('#order-title').waitFor();
  const title = await page.locator('#order-title').textContent();
  if (!title.includes(shown[0])) fail(`order page shows "${title}", want ${shown[0]}`);
  const lines = await page.locator('table.lines tbody tr').count();
  ok(`order page: ${title} with ${lines} lines`);

  if (process.env.WRITES === 'on') {
    await page.click('#new-order-link');
    await page.locator('form.order').waitFor();
    await page.selectOption('#product', { index: 1 });
    await page.fill('#quantity', '3');
    await page.fill('#reference', 'BROWSER-TEST');
    await Promise.all([page.waitForURL((u) => /#\/orders\/(?!new)/.test(u.hash)), page.click('#place-order')]);
    await page.locator('#order-title').waitFor();
    const placed = (await page.locator('#order-title').textContent()).replace('Order ', '');
    const qty = await page.locator('table.lines tbody tr td.num').first().textContent();
    if (!qty.startsWith('3')) fail(`the new order's line has quantity ${qty}, want 3`);
    await page.click('a[href="#/"]');
    await page.locator(`#recent-orders tr[data-order="${placed}"]`).waitFor();
    ok(`placed order ${placed} (3 pcs); the dashboard lists it among the recent orders`);
  } else if (await page.locator('#new-order-link').count()) {
    fail('writes are off but the portal offers "Place an order"');
  }

  await noTokenInJavaScript(page, 'signed in');
  const session = (await context.cookies()).find((c) => c.name.endsWith('erpgraph-session'));
  if (!session || !session.httpOnly || session.sameSite !== 'Lax' || session.path !== '/') {
    fail('session cookie flags: ' + JSON.stringify(session && { ...session, value: '…' }));
  }
  ok('session cookie is HttpOnly, SameSite=Lax, Path=/');

  await Promise.all([page.waitForURL((u) => u.pathname.startsWith('/portal/') && !u.search.includes('code=')), page.click('#sign-out')]);
  await page.locator('#sign-in').waitFor();
  ok('signed out through the identity server, back at the portal');

  // The old session id is refused, even when sent again on purpose.
  const refused = await context.request.post(base + '/graphql', {
    headers: { 'Content-Type': 'application/json', 'X-CSRF': '1', Cookie: `${session.name}=${session.value}` },
    data: { query: '{ me { login } }' },
  });
  const body = await refused.json();
  const code = body.errors && body.errors[0].extensions.code;
  if (code !== 'UNAUTHENTICATED' || (body.data && body.data.me)) fail(`old session after sign-out: ${refused.status()} ${JSON.stringify(body)}`);
  ok(`old session id after sign-out: ${refused.status()} ${code}`);
  await noTokenInJavaScript(page, 'after sign-out');
  console.log('PASS portal');
} finally {
  await close();
}
