#!/usr/bin/env node
// token_server.js - a Microsoft Entra ID token endpoint for tests, on loopback.
//
// Answers the three ways a process gets a token for Azure Storage, and checks each request
// as the real endpoint would before it issues anything:
//  * POST /TENANT/oauth2/v2.0/token (Entra ID, client credentials): tenant, client_id,
//    grant_type=client_credentials, scope=https://storage.azure.com/.default, and either the
//    federated assertion (client_assertion_type jwt-bearer, client_assertion equal to the
//    configured one: workload identity) or the client secret.
//  * GET /metadata/identity/oauth2/token (IMDS): Metadata: true, api-version=2018-02-01,
//    resource=https://storage.azure.com/, client_id when a user-assigned one is configured.
//  * GET /msi/token (App Service): X-IDENTITY-HEADER, api-version=2019-08-01, resource.
// Tokens are JWTs with the claims Azurite's `--oauth basic` checks (aud, iss, nbf, exp, iat);
// they are not signed, which Azurite does not check. Refusals carry Entra ID's error body
// (error, error_description starting "AADSTSnnnn:", error_codes).
//
// Control (JSON): GET /__control/stats, POST /__control/reset, POST /__control/config with
//   tenant, clientId, assertion, secret, identityHeader, msiClientId,
//   expiresIn   seconds the answer says the token lives (default 3600)
//   jwtLifetime seconds until the token's exp claim (default: expiresIn); less than expiresIn
//               makes a token the service refuses before its holder expects it to
//   audience    the aud claim (default https://storage.azure.com)
//   revoked     true: refuse every request as a revoked assertion / secret / identity
// Usage: node token_server.js [--listen 127.0.0.1:0] [--port-file FILE]
'use strict';
const http = require('http');
const fs = require('fs');
const crypto = require('crypto');

const cfg = {
  tenant: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  clientId: '',
  assertion: '',
  secret: '',
  identityHeader: '',
  msiClientId: '',
  expiresIn: 3600,
  jwtLifetime: null,
  audience: 'https://storage.azure.com',
  revoked: false,
};
const SCOPE = 'https://storage.azure.com/.default';
const RESOURCE = 'https://storage.azure.com/';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

let stats;
function resetStats() {
  stats = {
    issued: 0,
    refused: 0,
    by_source: { workload_identity: 0, client_secret: 0, imds: 0, app_service: 0 },
    last_refusal: '',
  };
}
resetStats();

const b64url = (x) => Buffer.from(x).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

function mintJwt(subject) {
  const t = now();
  const lifetime = cfg.jwtLifetime === null ? cfg.expiresIn : cfg.jwtLifetime;
  const claims = {
    aud: cfg.audience,
    iss: `https://sts.windows.net/${cfg.tenant}/`,
    iat: t, nbf: t, exp: t + lifetime,
    appid: subject, oid: subject, sub: subject, tid: cfg.tenant, ver: '1.0',
    uti: crypto.randomBytes(8).toString('hex'),
  };
  return [b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'test' })),
    b64url(JSON.stringify(claims)), b64url('not signed')].join('.');
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

// Entra ID's error body.
function refuseAad(res, status, error, code, text) {
  stats.refused++;
  stats.last_refusal = `AADSTS${code}`;
  const trace = crypto.randomUUID();
  send(res, status, {
    error,
    error_description: `AADSTS${code}: ${text}\r\nTrace ID: ${trace}\r\nCorrelation ID: ${crypto.randomUUID()}\r\nTimestamp: ${new Date().toISOString()}`,
    error_codes: [code], timestamp: new Date().toISOString(), trace_id: trace, correlation_id: crypto.randomUUID(),
  });
}

function refuseMsi(res, status, error, text) {
  stats.refused++;
  stats.last_refusal = text;
  send(res, status, { error, error_description: text });
}

function issue(res, source, body) {
  stats.issued++;
  stats.by_source[source]++;
  send(res, 200, body);
}

function entraToken(req, res, tenant, form) {
  if ((req.headers['content-type'] || '').split(';')[0].trim() !== 'application/x-www-form-urlencoded') {
    return refuseAad(res, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
  }
  if (tenant !== cfg.tenant) {
    return refuseAad(res, 400, 'invalid_request', 90002, `Tenant '${tenant}' not found.`);
  }
  if (form.get('grant_type') !== 'client_credentials') {
    return refuseAad(res, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${form.get('grant_type')}'.`);
  }
  if (form.get('client_id') !== cfg.clientId) {
    return refuseAad(res, 400, 'unauthorized_client', 700016,
      `Application with identifier '${form.get('client_id')}' was not found in the directory '${tenant}'.`);
  }
  if (form.get('scope') !== SCOPE) {
    return refuseAad(res, 400, 'invalid_scope', 70011, `The provided value '${form.get('scope')}' for the input parameter 'scope' is not valid.`);
  }
  let source;
  if (form.has('client_assertion') || form.has('client_assertion_type')) {
    if (form.get('client_assertion_type') !== JWT_BEARER) {
      return refuseAad(res, 400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
    }
    if (cfg.revoked || !cfg.assertion || form.get('client_assertion') !== cfg.assertion) {
      return refuseAad(res, 400, 'invalid_client', 70021, 'No matching federated identity record found for presented assertion.');
    }
    source = 'workload_identity';
  } else {
    if (cfg.revoked || !cfg.secret || form.get('client_secret') !== cfg.secret) {
      return refuseAad(res, 401, 'invalid_client', 7000215,
        'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
    }
    source = 'client_secret';
  }
  issue(res, source, {
    token_type: 'Bearer', expires_in: cfg.expiresIn, ext_expires_in: cfg.expiresIn,
    access_token: mintJwt(cfg.clientId),
  });
}

function imdsToken(req, res, q) {
  if (req.method !== 'GET') return refuseMsi(res, 405, 'invalid_request', 'Only GET is allowed');
  if (req.headers.metadata !== 'true') return refuseMsi(res, 400, 'invalid_request', 'Required metadata header not specified');
  if (q.get('api-version') !== '2018-02-01') return refuseMsi(res, 400, 'invalid_request', `Unsupported api-version ${q.get('api-version')}`);
  if (q.get('resource') !== RESOURCE) return refuseMsi(res, 400, 'invalid_resource', `Resource ${q.get('resource')} is not expected`);
  if (cfg.revoked || (q.get('client_id') || '') !== cfg.msiClientId) return refuseMsi(res, 400, 'invalid_request', 'Identity not found');
  const t = now();
  issue(res, 'imds', {
    access_token: mintJwt(cfg.msiClientId || 'system-assigned'), client_id: cfg.msiClientId || 'system-assigned',
    expires_in: String(cfg.expiresIn), expires_on: String(t + cfg.expiresIn), ext_expires_in: String(cfg.expiresIn),
    not_before: String(t), resource: RESOURCE, token_type: 'Bearer',
  });
}

function appServiceToken(req, res, q) {
  if (!cfg.identityHeader || req.headers['x-identity-header'] !== cfg.identityHeader) {
    stats.refused++;
    stats.last_refusal = 'X-IDENTITY-HEADER';
    return send(res, 401, { statusCode: 401, message: 'The X-IDENTITY-HEADER is missing or does not match' });
  }
  if (q.get('api-version') !== '2019-08-01') return refuseMsi(res, 400, 'invalid_request', `Unsupported api-version ${q.get('api-version')}`);
  if (q.get('resource') !== RESOURCE) return refuseMsi(res, 400, 'invalid_resource', `Resource ${q.get('resource')} is not expected`);
  if (cfg.revoked || (q.get('client_id') || '') !== cfg.msiClientId) return refuseMsi(res, 400, 'invalid_request', 'Identity not found');
  issue(res, 'app_service', {
    access_token: mintJwt(cfg.msiClientId || 'system-assigned'), expires_on: String(now() + cfg.expiresIn),
    resource: RESOURCE, token_type: 'Bearer', client_id: cfg.msiClientId || 'system-assigned',
  });
}

function control(req, res, path, body) {
  if (path === '/__control/stats') return send(res, 200, stats);
  if (path === '/__control/reset' && req.method === 'POST') { resetStats(); return send(res, 200, stats); }
  if (path === '/__control/config' && req.method === 'POST') {
    let s;
    try { s = JSON.parse(body || '{}'); } catch (e) { return send(res, 400, { error: `not JSON: ${e.message}` }); }
    for (const k of Object.keys(s)) {
      if (!(k in cfg)) return send(res, 400, { error: `unknown setting: ${k}` });
    }
    Object.assign(cfg, s);
    return send(res, 200, cfg);
  }
  return send(res, 404, { error: `no control endpoint ${req.method} ${path}` });
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, 'http://localhost');
    const path = url.pathname;
    if (path.startsWith('/__control/')) return control(req, res, path, body);
    const m = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path);
    if (m && req.method === 'POST') return entraToken(req, res, decodeURIComponent(m[1]), new URLSearchParams(body));
    if (path === '/metadata/identity/oauth2/token') return imdsToken(req, res, url.searchParams);
    if (path === '/msi/token') return appServiceToken(req, res, url.searchParams);
    send(res, 404, { error: 'not_found', error_description: `no endpoint ${req.method} ${path}` });
  });
});

let listen = '127.0.0.1:0';
let portFile = null;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--listen') listen = args[++i];
  else if (args[i] === '--port-file') portFile = args[++i];
  else { console.error(`unknown argument ${args[i]}`); process.exit(2); }
}
const colon = listen.lastIndexOf(':');
server.listen(Number(listen.slice(colon + 1)), listen.slice(0, colon), () => {
  const port = server.address().port;
  if (portFile) {
    fs.writeFileSync(`${portFile}.tmp`, String(port));
    fs.renameSync(`${portFile}.tmp`, portFile);
  }
  console.log(`token server on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => process.exit(0));
