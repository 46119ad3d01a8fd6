// Gatehouse's test identity provider: a real, certified OpenID provider (node oidc-provider)
// configured like a company IdP, started by the Rust tests on a free loopback port.
// See README.md beside this file for the command line, clients, users and control routes.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'issuer-host': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'post-logout-redirect-uri': { type: 'string', multiple: true, default: [] },
  },
});

export const API_AUDIENCE = 'api://default';

// Users as a company directory would hand them out; `groups` decides who is an admin.
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
  'gatehouse-machine': 'directory.read directory.write',
  'gatehouse-reader': 'directory.read',
};

const stats = {
  jwks_requests: 0,
  discovery_requests: 0,
  token_requests: 0,
  userinfo_requests: 0,
  authorization_requests: 0,
};

async function newSigningKey() {
  const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function buildProvider(issuer, keys) {
  const redirectUris = args['redirect-uri'].length ? args['redirect-uri'] : ['http://127.0.0.1:9/auth/callback'];
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'gatehouse-web',
        client_secret: 'gatehouse-web-secret',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: redirectUris,
        post_logout_redirect_uris: args['post-logout-redirect-uri'],
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
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access', 'directory.read', 'directory.write'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    // Put scope claims (email, groups) into the ID token too, as Okta's custom servers can.
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      const user = USERS[sub];
      if (!user) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...user }) };
    },
    // First-party client: no consent screen (Okta does not show one either); everything
    // requested is granted once the user has signed in.
    async loadExistingGrant(ctx) {
      const existing = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (existing) return ctx.oidc.provider.Grant.find(existing);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
      grant.addOIDCClaims(['sub', 'email', 'email_verified', 'name', 'preferred_username', 'groups']);
      await grant.save();
      return grant;
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Machine clients get API tokens without naming the resource; the web client's
        // sign-in keeps opaque tokens, which the userinfo endpoint accepts.
        defaultResource(ctx, client) {
          return MACHINE_SCOPES[client.clientId] ? API_AUDIENCE : undefined;
        },
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resource, client) {
          if (resource !== API_AUDIENCE) throw new errors.InvalidTarget();
          return {
            audience: API_AUDIENCE,
            scope: MACHINE_SCOPES[client.clientId] ?? 'directory.read',
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
    cookies: { keys: ['gatehouse-test-idp-cookie-key-0123456789'] },
    ttl: { AccessToken: 3600, ClientCredentials: 3600, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>Error</title><h1>${out.error}</h1><p>${out.error_description ?? ''}</p>`;
    },
  });
  return provider;
}

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), args.host, resolve);
});
const { port } = server.address();
const issuer = `http://${args['issuer-host'] ?? args.host}:${port}`;

let keys = [await newSigningKey()];
let provider = buildProvider(issuer, keys);
let handler = provider.callback();

function count(path) {
  if (path === '/jwks') stats.jwks_requests += 1;
  else if (path === '/.well-known/openid-configuration') stats.discovery_requests += 1;
  else if (path === '/token') stats.token_requests += 1;
  else if (path === '/me') stats.userinfo_requests += 1;
  else if (path === '/auth') stats.authorization_requests += 1;
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

server.on('request', async (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  try {
    if (path === '/__test/rotate-keys' && req.method === 'POST') {
      // The new key goes first, so it signs; the old ones stay published for verifiers.
      keys = [await newSigningKey(), ...keys];
      provider = buildProvider(issuer, keys);
      handler = provider.callback();
      sendJson(res, 200, { kid: keys[0].kid, kids: keys.map((k) => k.kid) });
      return;
    }
    if (path === '/__test/stats' && req.method === 'GET') {
      sendJson(res, 200, stats);
      return;
    }
    count(path);
    handler(req, res);
  } catch (err) {
    process.stderr.write(`test idp: ${err.stack ?? err}\n`);
    sendJson(res, 500, { error: 'server_error' });
  }
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent holds our stdin; when it goes away (even by crashing), so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

process.stdout.write(`${JSON.stringify({ ready: true, issuer, port })}\n`);
