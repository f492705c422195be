// erpgraph playground: GraphiQL plus sign-in with the Authorization Code
// flow and PKCE (S256) against the ERP.net identity server.
//
// The access token lives in the `session` variable only: never in web
// storage or cookies, so it is gone when the tab closes.
// Only the PKCE verifier, state and nonce wait in sessionStorage while the
// browser is away at the identity server, and they are removed on return.
(function () {
  'use strict';

  var cfg = JSON.parse(document.getElementById('erpgraph-config').textContent);
  var PENDING = 'erpgraph.signin'; // sessionStorage key during the redirect
  var session = null; // {accessToken, idToken, claims}
  var expiryTimer = null;

  var $ = function (id) { return document.getElementById(id); };
  var redirectURI = window.location.origin + window.location.pathname;

  function showError(msg) { $('erpgraph-error').textContent = msg || ''; }

  function b64url(bytes) {
    var s = '';
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomString() {
    var bytes = new Uint8Array(32);
    crypto.getRandomValues(bytes);
    return b64url(bytes);
  }

  function decodeClaims(jwt) {
    try {
      var part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      var json = decodeURIComponent(Array.prototype.map.call(atob(part), function (c) {
        return '%' + ('00' + c.charCodeAt(0).toString(16)).slice(-2);
      }).join(''));
      return JSON.parse(json);
    } catch (e) {
      return {};
    }
  }

  function render() {
    var signedIn = session !== null;
    $('erpgraph-signin').hidden = signedIn;
    $('erpgraph-signout').hidden = !signedIn;
    $('erpgraph-hint').textContent = signedIn ? '' : (cfg.signInHint || '');
    if (!signedIn) {
      $('erpgraph-status').innerHTML = 'Not signed in: only <code>__typename</code> answers.';
      return;
    }
    var c = session.claims;
    var who = (c.name ? c.name + ' ' : '') + '(' + (c.sub || '?') + (c.user_type ? ', ' + c.user_type : '') + ')';
    var until = c.exp ? ' until ' + new Date(c.exp * 1000).toLocaleTimeString() : '';
    $('erpgraph-status').textContent = 'Signed in as ' + who + until + '; queries carry the access token.';
  }

  function forget() {
    session = null;
    if (expiryTimer) clearTimeout(expiryTimer);
    expiryTimer = null;
    render();
  }

  async function signIn() {
    showError('');
    if (!window.crypto || !crypto.subtle) {
      showError('Sign-in needs a secure context (https, or http on localhost).');
      return;
    }
    var verifier = randomString();
    var state = randomString();
    var nonce = randomString();
    var digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    sessionStorage.setItem(PENDING, JSON.stringify({ verifier: verifier, state: state, nonce: nonce, redirectURI: redirectURI }));
    var u = new URL(cfg.authorizationEndpoint);
    u.search = new URLSearchParams({
      response_type: 'code',
      client_id: cfg.clientId,
      redirect_uri: redirectURI,
      scope: cfg.scopes,
      state: state,
      nonce: nonce,
      code_challenge: b64url(new Uint8Array(digest)),
      code_challenge_method: 'S256'
    }).toString();
    window.location.assign(u.toString());
  }

  // completeSignIn handles the identity server's redirect back to the page:
  // it checks state, exchanges the code with the PKCE verifier and keeps the
  // tokens in memory.
  async function completeSignIn() {
    var params = new URLSearchParams(window.location.search);
    if (!params.has('code') && !params.has('error')) return;
    var pending = null;
    try { pending = JSON.parse(sessionStorage.getItem(PENDING)); } catch (e) { pending = null; }
    sessionStorage.removeItem(PENDING);
    // The code must not stay in the address bar or the history.
    window.history.replaceState(null, '', window.location.pathname);
    if (params.has('error')) {
      showError('Sign-in failed: ' + (params.get('error_description') || params.get('error')));
      return;
    }
    if (!pending || params.get('state') !== pending.state) {
      showError('Sign-in failed: the answer does not belong to a sign-in started here.');
      return;
    }
    var res = await fetch(cfg.tokenEndpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      credentials: 'omit',
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code'),
        redirect_uri: pending.redirectURI,
        client_id: cfg.clientId,
        code_verifier: pending.verifier
      })
    });
    var body = await res.json().catch(function () { return {}; });
    if (!res.ok || !body.access_token) {
      showError('Sign-in failed: ' + (body.error_description || body.error || ('token endpoint answered ' + res.status)));
      return;
    }
    if (body.id_token && decodeClaims(body.id_token).nonce !== pending.nonce) {
      showError('Sign-in failed: the id_token does not match this sign-in.');
      return;
    }
    session = { accessToken: body.access_token, idToken: body.id_token || '', claims: decodeClaims(body.access_token) };
    var ms = (body.expires_in || 3600) * 1000;
    expiryTimer = setTimeout(function () { forget(); showError('The access token expired; sign in again.'); }, ms);
    render();
  }

  function signOut() {
    var idToken = session && session.idToken;
    forget();
    showError('');
    // End the identity server session too, or the next sign-in would
    // silently reuse it.
    if (cfg.endSessionEndpoint && idToken) {
      var u = new URL(cfg.endSessionEndpoint);
      u.search = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: redirectURI }).toString();
      window.location.assign(u.toString());
    }
  }

  async function fetcher(params, opts) {
    var headers = { 'Content-Type': 'application/json', 'Accept': 'application/graphql-response+json, application/json' };
    if (opts && opts.headers) Object.assign(headers, opts.headers);
    if (session) headers.Authorization = 'Bearer ' + session.accessToken;
    var res = await fetch(cfg.graphqlPath, { method: 'POST', headers: headers, body: JSON.stringify(params), credentials: 'omit' });
    if (res.status === 401 && session) {
      forget();
      showError('The server refused the access token; sign in again.');
    }
    return res.json();
  }

  $('erpgraph-signin').addEventListener('click', function () {
    signIn().catch(function (e) { showError('Sign-in failed: ' + e.message); });
  });
  $('erpgraph-signout').addEventListener('click', signOut);
  render();
  completeSignIn().catch(function (e) { showError('Sign-in failed: ' + e.message); });

  var tabs = (cfg.examples || []).map(function (ex) { return { query: ex.query }; });
  ReactDOM.createRoot($('graphiql')).render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultTabs: tabs.length ? tabs : undefined,
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: false
  }));
})();
