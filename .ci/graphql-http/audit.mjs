// audit.mjs runs graphql-http's auditServer (the GraphQL over HTTP spec's
// conformance audit) against one erpgraph, with a signed-in user's token and
// a CSRF header on every request, and prints the passed/total count per
// requirement level. A failed MUST audit fails the run; SHOULD and MAY
// results are reported.
//
// Usage: AUDIT_TOKEN=<access token> node audit.mjs <label> <url of /graphql>
import { auditServer } from 'graphql-http';

const [label, url] = process.argv.slice(2);
const token = process.env.AUDIT_TOKEN;
if (!label || !url || !token) {
  console.error('usage: AUDIT_TOKEN=<token> node audit.mjs <label> <url>');
  process.exit(2);
}

// Every request the audit sends is a signed-in user's and passes the CSRF
// check (a GET or a text POST needs a preflight-forcing header).
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('Authorization', `Bearer ${token}`);
  headers.set('Apollo-Require-Preflight', 'true');
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
const levels = { MUST: [0, 0], SHOULD: [0, 0], MAY: [0, 0] };
const failed = [];
for (const r of results) {
  const level = r.name.split(' ')[0];
  levels[level][1]++;
  if (r.status === 'ok') {
    levels[level][0]++;
    continue;
  }
  let body = '';
  try {
    body = (await r.response.text()).slice(0, 300);
  } catch {}
  failed.push({ level, id: r.id, name: r.name, status: r.status, reason: r.reason, httpStatus: r.response?.status, body });
}
const summary = Object.entries(levels).map(([l, [ok, all]]) => `${l} ${ok}/${all}`).join(', ');
console.log(`graphql-http audit (${label}): ${summary}`);
for (const f of failed) {
  console.log(`  ${f.status} ${f.id} ${f.name}: ${f.reason} (HTTP ${f.httpStatus}) ${f.body}`);
}
if (failed.some((f) => f.level === 'MUST')) {
  console.error(`graphql-http audit (${label}): a MUST requirement failed`);
  process.exit(1);
}
