// Shared launch and checks for the browser tests (run by browser_test.go).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const base = process.env.ERPGRAPH_URL;
if (!base) {
  console.error('ERPGRAPH_URL is not set (browser_test.go sets it to the erpgraph under test)');
  process.exit(2);
}

export function fail(msg) {
  console.error('FAIL', msg);
  process.exit(1);
}

export function ok(msg) {
  console.log('ok  ', msg);
}

// launch starts Debian's chromium (never a downloaded browser) headless with
// a fresh profile, and returns the context and a cleanup function.
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'erpgraph-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    timeout: 60_000,
  });
  // Every step waits for an event (a URL, an element); this is only the
  // ceiling. On a loaded two-core machine, with erpgraph built with -race, the
  // playground's first load (GraphiQL and React, gzipped on first request)
  // took over 30 s in `go test -count=3 ./...`; the Go test bounds the whole
  // run at 3 minutes.
  context.setDefaultTimeout(120_000);
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

// noTokenInJavaScript checks that nothing a script can read holds a token:
// cookies visible to document.cookie, local and session storage, IndexedDB.
export async function noTokenInJavaScript(page, what) {
  const seen = await page.evaluate(async () => {
    const dbs = indexedDB.databases ? await indexedDB.databases() : [];
    return {
      cookie: document.cookie,
      local: Object.entries(localStorage),
      session: Object.entries(sessionStorage),
      indexedDB: dbs.map((d) => d.name),
    };
  });
  const jwt = /eyJ[\w-]+\.[\w-]+\./;
  const all = [seen.cookie, ...seen.local.flat(), ...seen.session.flat()].join('\n');
  if (jwt.test(all)) fail(`${what}: a JWT is readable from JavaScript: ${JSON.stringify(seen)}`);
  if (/erpgraph-session|refresh|access_token|id_token/i.test(all)) fail(`${what}: a session cookie or token is readable from JavaScript: ${JSON.stringify(seen)}`);
  if (seen.indexedDB.length) fail(`${what}: IndexedDB databases ${seen.indexedDB.join(', ')}`);
  ok(`${what}: document.cookie ${JSON.stringify(seen.cookie)}, ${seen.local.length} localStorage and ${seen.session.length} sessionStorage entries, no IndexedDB; no token`);
}
