// The portal's only two ways to talk to erpgraph: the session endpoints and
// GraphQL, both on this origin, both authenticated by the HttpOnly session
// cookie the browser sends by itself. The page never sees a token.
//
// Every request carries X-CSRF: 1. A page on another site cannot add that
// header without a CORS preflight, which erpgraph never grants with
// credentials, so a forged cross-site request never runs with the cookie.

export const AUTH = '/auth'; // ERPGRAPH_SESSION_PATH_PREFIX
export const GRAPHQL = '/graphql';

const CSRF = { 'X-CSRF': '1' };

/** SignedOut is thrown when there is no (longer a) session: show the sign-in. */
export class SignedOut extends Error {}

/** The signed-in user ({name, login, userType, sessionExpiresAt, logoutUrl}), or null. */
export async function currentUser() {
  const res = await fetch(AUTH + '/user', { headers: CSRF, credentials: 'same-origin' });
  if (res.status === 401) return null;
  if (!res.ok) throw new Error('the session endpoint answered ' + res.status);
  return res.json();
}

/** The URL that starts the sign-in and comes back to the current page. */
export function signInURL() {
  const here = location.pathname + location.search + location.hash;
  return AUTH + '/login?returnTo=' + encodeURIComponent(here);
}

/**
 * Runs a GraphQL operation. Resolves to {data, errors}: fields that failed
 * are null in data with an error at their path, the rest is usable.
 * Throws SignedOut when the session is missing or ended (UNAUTHENTICATED).
 */
export async function graphql(query, variables = {}) {
  const res = await fetch(GRAPHQL, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { ...CSRF, 'Content-Type': 'application/json', Accept: 'application/graphql-response+json, application/json' },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await res.json();
  } catch {
    throw new Error('erpgraph answered ' + res.status + ' without a GraphQL response');
  }
  const errors = body.errors || [];
  if (res.status === 401 || errors.some((e) => e.extensions && e.extensions.code === 'UNAUTHENTICATED')) {
    throw new SignedOut('signed out');
  }
  if (!body.data && errors.length) {
    const e = new Error(errors[0].message);
    e.code = errors[0].extensions && errors[0].extensions.code;
    throw e;
  }
  return { data: body.data, errors };
}
