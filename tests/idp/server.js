// Gatehouse's test identity provider: a real, certified OpenID provider (node oidc-provider)
// configured like a company IdP, started by the Rust tests on a free loopback port.
// See README.md beside this file for the command line, clients, users and control routes,
// and smoke.sh for every flow driven with curl.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

// stdout carries exactly one line, the ready line. oidc-provider prints its notices with
// console.info (e.g. "default ... function called"), so every console output goes to stderr.
console.log = console.info = console.warn;
process.stdout.on('error', () => {});

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'issuer-host': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'post-logout-redirect-uri': { type: 'string', multiple: true, default: [] },
    'backchannel-logout-uri': { type: 'string' },
  },
});

export const API_AUDIENCE = 'api://default';

// Users as a company directory would hand them out; `groups` decides who is an admin.
// The login name typed into the form is the `sub`.
const USERS = {
  alice: {
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Example',
    preferred_username: 'alice',
    groups: ['gatehouse-admins', 'engineering'],
  },
  bob: {
    email: 'bob@example.com',
    email_verified: true,
    name: 'Bob Example',
    preferred_username: 'bob',
    groups: ['engineering'],
  },
};

// Machine clients and the API scopes each may hold.
const MACHINE_SCOPES = {
  'gatehouse-machine': 'directory.read directory.write repos.read',
  'gatehouse-reader': 'directory.read',
};

// The API scopes a user's token may hold (gatehouse-web asking for resource=api://default).
const USER_API_SCOPES = 'directory.read repos.read';

const OIDC_CLAIMS = ['sub', 'email', 'email_verified', 'name', 'preferred_username', 'groups'];

const stats = {
  jwks_requests: 0,
  discovery_requests: 0,
  token_requests: 0,
  userinfo_requests: 0,
  authorization_requests: 0,
  end_session_requests: 0,
  key_rotations: 0,
};

// Storage shared by every Provider instance of this process. A key rotation builds a new
// Provider; with oidc-provider's own in-memory adapter (one store per instance) it would lose
// every session, grant, interaction, code and opaque token. This is the adapter interface of
// oidc-provider (upsert/find/findByUid/findByUserCode/consume/destroy/revokeByGrantId) over one Map.
const store = new Map();
const nowSeconds = () => Math.floor(Date.now() / 1000);
function storeGet(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.value;
}
function storeSet(key, value, expiresIn) {
  const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
  store.set(key, { value, expiresAt });
}
// Expired entries go on a sweep once a minute (and on any read).
setInterval(() => {
  for (const key of store.keys()) storeGet(key);
}, 60_000).unref();
class SharedMemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    storeSet(key, payload, expiresIn);
    if (this.model === 'Session' && payload.uid) storeSet(`sessionUid:${payload.uid}`, id, expiresIn);
    if (payload.userCode) storeSet(`userCode:${payload.userCode}`, id, expiresIn);
    if (payload.grantId) {
      const members = storeGet(`grant:${payload.grantId}`) ?? new Set();
      members.add(key);
      storeSet(`grant:${payload.grantId}`, members);
    }
  }

  async find(id) {
    return storeGet(this.key(id));
  }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = storeGet(this.key(id));
    if (payload) payload.consumed = nowSeconds();
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of storeGet(`grant:${grantId}`) ?? []) store.delete(key);
    store.delete(`grant:${grantId}`);
  }
}

async function newSigningKey() {
  const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function buildProvider(issuer, keys) {
  const redirectUris = args['redirect-uri'].length ? args['redirect-uri'] : ['http://127.0.0.1:9/auth/callback'];
  const provider = new Provider(issuer, {
    adapter: SharedMemoryAdapter,
    clients: [
      {
        client_id: 'gatehouse-web',
        client_secret: 'gatehouse-web-secret',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: redirectUris,
        post_logout_redirect_uris: args['post-logout-redirect-uri'],
        // Back-channel logout: a logout token with the session's sid when it ends here (the
        // ID tokens then carry that sid).
        ...(args['backchannel-logout-uri'] ? {
          backchannel_logout_uri: args['backchannel-logout-uri'],
          backchannel_logout_session_required: true,
        } : {}),
      },
      ...Object.keys(MACHINE_SCOPES).map((id) => ({
        client_id: id,
        client_secret: `${id}-secret`,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        // Asking for more than this is refused with invalid_scope, as Okta does.
        scope: MACHINE_SCOPES[id],
      })),
    ],
    jwks: { keys },
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access', 'directory.read', 'directory.write', 'repos.read'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    // Put scope claims (email, groups) into the ID token too, as Okta's custom servers can.
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      const user = Object.hasOwn(USERS, sub) ? USERS[sub] : undefined;
      if (!user) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...user }) };
    },
    // First-party client: no consent screen (Okta does not show one either). Whatever OIDC
    // scopes the authorization request asks for are granted once the user has signed in,
    // also when a later request asks for more than an earlier one did.
    async loadExistingGrant(ctx) {
      const { Grant } = ctx.oidc.provider;
      const clientId = ctx.oidc.client.clientId;
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(clientId);
      let grant = grantId ? await Grant.find(grantId) : undefined;
      if (!grant) grant = new Grant({ clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' ') || 'openid');
      grant.addOIDCClaims(OIDC_CLAIMS);
      // An authorization request naming the API (resource=api://default) is granted the API
      // scopes it asks for, within what the resource allows a user: a user's API token.
      for (const [indicator, server] of Object.entries(ctx.oidc.resourceServers ?? {})) {
        const allowed = new Set((server.scope ?? '').split(' '));
        const asked = [...ctx.oidc.requestParamScopes].filter((s) => allowed.has(s));
        if (asked.length) grant.addResourceScope(indicator, asked.join(' '));
      }
      await grant.save();
      return grant;
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      // Same buttons and form as oidc-provider's default pages, without their web-font import.
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
      backchannelLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Machine clients get API tokens without naming the resource. The web client's
        // sign-in has no default resource, so its access token is opaque and meant for the
        // provider itself: that is the only kind the userinfo endpoint accepts.
        defaultResource(ctx, client) {
          return Object.hasOwn(MACHINE_SCOPES, client.clientId) ? API_AUDIENCE : undefined;
        },
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resource, client) {
          if (resource !== API_AUDIENCE) throw new errors.InvalidTarget();
          return {
            audience: API_AUDIENCE,
            scope: MACHINE_SCOPES[client.clientId] ?? USER_API_SCOPES,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 3600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    extraTokenClaims(ctx, token) {
      // Okta names the client `cid`; keep both so verifiers can be tested against either.
      return token.clientId ? { cid: token.clientId } : undefined;
    },
    // Same cookie keys in every Provider instance, so browser sessions survive a rotation.
    cookies: { keys: ['gatehouse-test-idp-cookie-key-0123456789'] },
    // oidc-provider refuses to call loopback addresses (SSRF protection), but here every
    // relying party it calls (back-channel logout) is a Gatehouse on 127.0.0.1.
    fetch: (url, options) => {
      const { dispatcher, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    ttl: {
      AccessToken: 3600,
      ClientCredentials: 3600,
      IdToken: 3600,
      RefreshToken: 86400,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page(out.error, `<p>${escapeHtml(out.error_description ?? '')}</p>`);
    },
  });
  // The dev login form accepts any login name and any password. A name that is not in USERS
  // signs no one in: the POST is answered with a 303 back to the same login form, as a company
  // IdP shows its form again after a wrong user name. (Left to oidc-provider, an unknown name
  // would be stored in the session and the resume would fail with a server_error.)
  // A failed back-channel logout is otherwise silent: say so on stderr (the test's output).
  provider.on('backchannel.error', (ctx, err, client) => {
    console.error(`back-channel logout to ${client.clientId} failed: ${err.message}`);
  });
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path)
      && ctx.is('application/x-www-form-urlencoded')) {
      const raw = await readBody(ctx.req);
      const form = new URLSearchParams(raw);
      if (form.get('prompt') === 'login' && !Object.hasOwn(USERS, form.get('login') ?? '')) {
        process.stderr.write(`test idp: unknown login ${JSON.stringify(form.get('login'))}, login form shown again\n`);
        ctx.redirect(ctx.path);
        ctx.status = 303;
        return undefined;
      }
      // Handed on as a parsed body, which oidc-provider accepts (it warns once on stderr).
      ctx.req.body = raw;
    }
    return next();
  });
  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`test idp: server_error on ${ctx.method} ${ctx.path}: ${err.stack ?? err}\n`);
  });
  return provider;
}

// oidc-provider's built-in pages (the dev login form among them) @import a web font from the
// internet; this network is loopback only, so a browser test must not even try. Every answer
// carries this policy: inline styles and scripts (the pages' own) and same-origin loads only.
const CONTENT_SECURITY_POLICY = "default-src 'self'; style-src 'self' 'unsafe-inline'; "
  + "script-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'";

function page(title, body) {
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;margin:25px auto;width:320px;text-align:center}button{display:block;width:100%;margin:8px 0;padding:8px}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>`;
}

// The logout confirmation: `form` is oidc-provider's (id op.logoutForm, hidden xsrf); the
// "Yes" button submits logout=yes.
async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = page(`Do you want to sign-out from ${ctx.host}?`, `${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
}

// Shown when no post_logout_redirect_uri was given (or it was not registered).
async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Sign-out Success', '<p>Your sign-out was successful.</p>');
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), args.host, resolve);
});
const { port } = server.address();
const issuer = `http://${args['issuer-host'] ?? args.host}:${port}`;

let keys = [await newSigningKey()];
let handler = buildProvider(issuer, keys).callback();

// Paths are oidc-provider's default routes (discovery's jwks_uri is `${issuer}/jwks`, etc.).
function count(path) {
  if (path === '/jwks') stats.jwks_requests += 1;
  else if (path === '/.well-known/openid-configuration') stats.discovery_requests += 1;
  else if (path === '/token') stats.token_requests += 1;
  else if (path === '/me') stats.userinfo_requests += 1;
  else if (path === '/auth') stats.authorization_requests += 1;
  else if (path === '/session/end') stats.end_session_requests += 1;
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

server.on('request', async (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  try {
    if (path === '/__test/rotate-keys' && req.method === 'POST') {
      // The new key goes first, so it signs; the old ones stay published for verifiers. The
      // new Provider shares the store and cookie keys, so nothing but the signing key changes.
      const next = [await newSigningKey(), ...keys];
      handler = buildProvider(issuer, next).callback();
      keys = next;
      stats.key_rotations += 1;
      sendJson(res, 200, { kid: keys[0].kid, kids: keys.map((k) => k.kid) });
      return;
    }
    if (path === '/__test/stats' && req.method === 'GET') {
      sendJson(res, 200, stats);
      return;
    }
    count(path);
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    handler(req, res);
  } catch (err) {
    process.stderr.write(`test idp: ${err.stack ?? err}\n`);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
  }
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent holds our stdin; when it goes away (even by crashing), so do we. A caller that
// wants it running in the background must hand it a stdin that stays open (not /dev/null).
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();

process.stdout.write(`${JSON.stringify({ ready: true, issuer, port })}\n`);
