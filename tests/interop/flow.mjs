// Interop: openid-client v6 (a certified OpenID relying-party library that
// nobody here wrote) runs discovery → authorize → token → userinfo → refresh
// against Lanyard and validates the ID token. A person's part (sign-up,
// verification, login) is done by filling Lanyard's forms over HTTP.
//
//   LANYARD_URL=http://127.0.0.1:3000 LANYARD_ADMIN_TOKEN=... node flow.mjs
import assert from 'node:assert/strict';
import * as client from 'openid-client';

const base = process.env.LANYARD_URL;
const adminToken = process.env.LANYARD_ADMIN_TOKEN;
const redirectUri = 'http://127.0.0.1:8999/callback';
const email = 'interop@example.com';
const password = 'an interop passphrase that is long';

// A tiny browser: cookies and manual redirects.
const jar = new Map();
async function browse(url, init = {}) {
  const headers = new Headers(init.headers || {});
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const res = await fetch(new URL(url, base), { ...init, headers, redirect: 'manual' });
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const i = pair.indexOf('=');
    const name = pair.slice(0, i);
    if (/Max-Age=0/.test(line)) jar.delete(name); else jar.set(name, pair.slice(i + 1));
  }
  return res;
}
async function postForm(path, fields) {
  if (!jar.has('__Host-lanyard_csrf')) await browse('/login');
  const body = new URLSearchParams({ csrf: jar.get('__Host-lanyard_csrf'), ...fields });
  return browse(path, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
}

// 1. The operator registers the application.
const reg = await fetch(`${base}/api/admin/clients`, {
  method: 'POST',
  headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
  body: JSON.stringify({
    client_name: 'openid-client interop', first_party: true,
    redirect_uris: [redirectUri], scope: 'openid profile email offline_access',
  }),
});
assert.equal(reg.status, 201, await reg.clone().text());
const { client_id: clientId, client_secret: clientSecret } = await reg.json();

// 2. A person signs up and verifies their email (dev outbox).
assert.equal((await postForm('/signup', { email, password, name: 'Ida Interop' })).status, 200);
const outbox = await (await fetch(`${base}/dev/outbox.json?to=${encodeURIComponent(email)}`)).json();
const token = new URL(outbox[0].link).searchParams.get('token');
assert.equal((await postForm('/verify', { token })).status, 200);

// 3. Discovery, then the authorization request with PKCE, state and nonce.
const config = await client.discovery(new URL(base), clientId, clientSecret, undefined, {
  execute: [client.allowInsecureRequests],
});
assert.equal(config.serverMetadata().issuer, base);
const codeVerifier = client.randomPKCECodeVerifier();
const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
const state = client.randomState();
const nonce = client.randomNonce();
const authUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri, scope: 'openid profile email offline_access',
  code_challenge: codeChallenge, code_challenge_method: 'S256', state, nonce,
});

// Not signed in: Lanyard sends the browser to its login page and back.
let res = await browse(authUrl);
assert.equal(res.status, 303);
const toLogin = new URL(res.headers.get('location'), base);
assert.equal(toLogin.pathname, '/login');
res = await postForm('/login', { email, password, return_to: toLogin.searchParams.get('return_to') });
assert.equal(res.status, 303);
res = await browse(res.headers.get('location'));
assert.equal(res.status, 303);
const callback = new URL(res.headers.get('location'));
assert.equal(callback.origin + callback.pathname, redirectUri);

// 4. The code exchange: openid-client checks state, iss, PKCE and the ID token.
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
});
const claims = tokens.claims();
assert.equal(claims.iss, base);
assert.equal(claims.aud, clientId);
assert.equal(claims.email, email);
assert.equal(claims.nonce, nonce);
assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');

// 5. UserInfo.
const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
assert.equal(info.email, email);
assert.equal(info.name, 'Ida Interop');

// 6. Refresh: a new access token and a rotated refresh token.
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
assert.notEqual(refreshed.access_token, tokens.access_token);
assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
assert.equal(refreshed.claims().sub, claims.sub);

// The old refresh token is now a reuse: refused, and the family is revoked.
await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), { error: 'invalid_grant' });
await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token), { error: 'invalid_grant' });

console.log('openid-client interop: discovery, code + PKCE, ID token, userinfo, refresh, reuse detection');
console.log('1 passed, 0 failed');
