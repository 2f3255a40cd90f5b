#!/usr/bin/env node
// fault_proxy.js - fault-injecting HTTP/1.1 reverse proxy for tests and benchmarks.
//
// Put it in front of ONE object-store server (Azurite, s3rver, nginx, ...). Clients talk
// to the proxy; it forwards every request to the upstream base URL and streams the
// response back, optionally adding latency, a bandwidth cap, injected errors and dropped
// connections. Node standard library only. Run with --help for the options.
//
// Contracts:
//  * Method, path+query and ALL request headers (raw, incl. Host: SigV4 signs it) are
//    forwarded unchanged. Response status and headers pass through unchanged except the
//    hop-by-hop Connection / Keep-Alive headers: the client connection is the proxy's
//    own (keep-alive), the upstream side uses a keep-alive http.Agent.
//  * Bodies are streamed both ways with backpressure, never buffered (objects up to 4 GiB).
//  * /__proxy/* control endpoints are answered by the proxy itself: never forwarded,
//    never faulted and not counted in the stats.
'use strict';
const http = require('http');
const https = require('https');
const fs = require('fs');
const { URL } = require('url');

const USAGE = `usage: node fault_proxy.js --upstream http://127.0.0.1:PORT [options]
  --upstream URL            upstream base URL (required); a path prefix is prepended to request paths
  --listen HOST:PORT        address to bind, default 127.0.0.1:0 (port 0 = OS chooses)
  --port-file FILE          write the bound port to FILE (via FILE.tmp + rename)
  --latency-ms N            delay before each request is forwarded or answered, default 0
  --bandwidth RATE          per-connection cap in bytes/s on request and on response bodies,
                            default 0 = unlimited; suffixes K/KB/M/MB/G/GB (x1000), KiB/MiB/GiB (x1024)
  --error-rate P            fraction 0..1 of requests answered with an injected error, default 0
  --error-codes C1,C2       codes to inject, picked at random, default 503
  --error-methods M1,M2     inject errors only into requests with these methods (e.g. PUT),
                            default: every method
  --retry-after S           add Retry-After: S to injected errors
  --drop-rate P             fraction 0..1 of requests whose connection is dropped mid-body, default 0
  --seed N                  PRNG seed (mulberry32) for reproducible fault sequences, default 1
  --error-first N           the next N requests (of --error-methods) get an injected error whatever
                            --error-rate says (then the rate applies), default 0
  --tls-cert FILE --tls-key FILE
                            serve HTTPS (control endpoints included) with this certificate and key
  --ca FILE                 trust this CA (PEM) for an https:// upstream, beside the system's
Control endpoints: GET /__proxy/stats, POST /__proxy/reset, GET|POST /__proxy/config
(JSON, camelCase: latencyMs, bandwidth, errorRate, errorCodes, errorMethods, retryAfter, dropRate, seed,
errorFirst).`;

// ---------------------------------------------------------------- configuration
function parseRate(v) { // "100MB" -> 1e8, "100MiB" -> 104857600, 5000 -> 5000
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?)b?\s*$/i.exec(String(v));
  if (!m) throw new Error(`bad bandwidth: ${v}`);
  const exp = { '': 0, k: 1, m: 2, g: 3 }[m[2].toLowerCase()];
  return Math.floor(Number(m[1]) * (m[3] ? 1024 : 1000) ** exp);
}
function parseFraction(v, name) {
  const x = Number(v);
  if (!(x >= 0 && x <= 1)) throw new Error(`${name} must be in 0..1, got ${v}`);
  return x;
}
function parseCodes(v) {
  const codes = (Array.isArray(v) ? v : String(v).split(',')).map(Number);
  if (!codes.length || codes.some((c) => !Number.isInteger(c) || c < 400 || c > 599)) {
    throw new Error(`error codes must be 400..599, got ${v}`);
  }
  return codes;
}
// Applies settings (camelCase names) to cfg; throws on invalid values before changing anything.
function applyConfig(cfg, s) {
  const next = { ...cfg };
  for (const [k, v] of Object.entries(s)) {
    switch (k) {
      case 'latencyMs': next.latencyMs = Math.max(0, Number(v) || 0); break;
      case 'bandwidth': next.bandwidth = parseRate(v); break;
      case 'errorRate': next.errorRate = parseFraction(v, k); break;
      case 'errorCodes': next.errorCodes = parseCodes(v); break;
      case 'errorMethods':
        next.errorMethods = (Array.isArray(v) ? v : String(v).split(',')).map((m) => String(m).trim().toUpperCase())
          .filter((m) => m !== '');
        break;
      case 'retryAfter': next.retryAfter = v === null || v === '' ? null : String(v); break;
      case 'dropRate': next.dropRate = parseFraction(v, k); break;
      case 'seed': next.seed = Number(v) >>> 0; rng = mulberry32(next.seed); break;
      case 'errorFirst': next.errorFirst = Math.max(0, Math.floor(Number(v) || 0)); break;
      default: throw new Error(`unknown setting: ${k}`);
    }
  }
  Object.assign(cfg, next);
  return cfg;
}

const cfg = { latencyMs: 0, bandwidth: 0, errorRate: 0, errorCodes: [503], errorMethods: [], retryAfter: null,
  dropRate: 0, seed: 1, errorFirst: 0 };
let rng = mulberry32(1);
let upstream = null;
let listen = '127.0.0.1:0';
let portFile = null;
let tlsCert = null, tlsKey = null, caFile = null;
try {
  const flags = { '--latency-ms': 'latencyMs', '--bandwidth': 'bandwidth', '--error-rate': 'errorRate',
    '--error-codes': 'errorCodes', '--error-methods': 'errorMethods', '--retry-after': 'retryAfter', '--drop-rate': 'dropRate', '--seed': 'seed',
    '--error-first': 'errorFirst' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    let [flag, val] = argv[i].split(/=(.*)/s);
    if (flag === '--help' || flag === '-h') { console.log(USAGE); process.exit(0); }
    if (val === undefined) val = argv[++i];
    if (val === undefined) throw new Error(`missing value for ${flag}`);
    if (flag === '--upstream') upstream = new URL(val);
    else if (flag === '--listen') listen = val;
    else if (flag === '--port-file') portFile = val;
    else if (flag === '--tls-cert') tlsCert = val;
    else if (flag === '--tls-key') tlsKey = val;
    else if (flag === '--ca') caFile = val;
    else if (flags[flag]) applyConfig(cfg, { [flags[flag]]: val });
    else throw new Error(`unknown option ${flag}`);
  }
  if (!upstream || !/^https?:$/.test(upstream.protocol)) throw new Error('--upstream http(s)://HOST:PORT is required');
  if (!tlsCert !== !tlsKey) throw new Error('--tls-cert and --tls-key go together');
} catch (e) {
  console.error(`fault_proxy: ${e.message}\n${USAGE}`);
  process.exit(2);
}

// mulberry32: tiny deterministic PRNG returning floats in [0, 1).
function mulberry32(a) {
  return function () {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------- stats
// part_requests / part_body_bytes: requests forwarded since the last reset that upload one part
// (S3 UploadPart: PUT ?partNumber=; Azure Put Block: PUT ?comp=block) and the body bytes of
// theirs passed on to the upstream. Booked to the stats of the request's arrival, so bytes of a
// request older than a reset never count after it. in_flight (not reset): requests forwarded
// whose answer has not ended yet; most_in_flight: the most there were at once since the reset.
let inFlight = 0;
let stats;
function resetStats() {
  stats = { requests: 0, by_method: {}, forwarded: 0, injected_errors: 0, dropped: 0,
    upstream_response_bytes: 0, upstream_response_bytes_by_method: {}, client_request_body_bytes: 0,
    part_requests: 0, part_body_bytes: 0, most_in_flight: inFlight };
}
resetStats();
function isPartUpload(req) {
  if (req.method !== 'PUT') return false;
  const q = new URL(req.url, 'http://x').searchParams;
  return q.has('partNumber') || q.get('comp') === 'block';
}

// ---------------------------------------------------------------- bandwidth
// Token bucket, one per direction per client connection. reserve(n) takes n bytes and
// returns how many ms to wait before sending them. The rate is read from cfg on every
// call, so run-time config changes apply immediately. Burst is ~50 ms worth of bytes.
const sliceBytes = () => (cfg.bandwidth ? Math.max(1024, Math.min(65536, Math.floor(cfg.bandwidth / 20))) : Infinity);
class Bucket {
  constructor() { this.tokens = Infinity; this.last = performance.now(); }
  reserve(n) {
    const rate = cfg.bandwidth;
    if (!rate) return 0;
    const now = performance.now();
    this.tokens = Math.min(sliceBytes(), this.tokens + ((now - this.last) * rate) / 1000) - n;
    this.last = now;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / rate;
  }
}
const kBuckets = Symbol('buckets');
const buckets = (socket) => (socket[kBuckets] ||= { up: new Bucket(), down: new Bucket() });

// Streams src -> dst in slices paced by `bucket`, honouring dst backpressure. After
// `limit` bytes it stops and calls onLimit() once those bytes were flushed (drop faults).
// If `dropAtEnd` is set, onLimit() replaces dst.end() (drop of a body of unknown length).
// Note: src may emit 'end' while the last chunk is still being paced (pause() does not
// hold back 'end'), so ending dst waits until that chunk has been written.
function pump(src, dst, bucket, { limit = Infinity, onData = () => {}, onLimit = null, dropAtEnd = false } = {}) {
  let sent = 0;
  let stopped = false;
  let needDrain = false;
  let busy = false; // a chunk is being written slice by slice
  let ended = false;
  const finish = () => { if (dropAtEnd) onLimit(); else dst.end(); };
  const step = (chunk, off) => {
    if (stopped || dst.destroyed) return;
    if (off >= chunk.length) {
      busy = false;
      if (ended) finish();
      else if (needDrain) dst.once('drain', () => src.resume());
      else src.resume();
      return;
    }
    const n = Math.min(chunk.length - off, sliceBytes(), limit - sent);
    const wait = bucket.reserve(n);
    if (wait > 0) setTimeout(send, wait, chunk, off, n); else send(chunk, off, n);
  };
  const send = (chunk, off, n) => {
    if (stopped || dst.destroyed) return;
    sent += n;
    if (sent >= limit) {
      stopped = true;
      src.pause();
      dst.write(chunk.subarray(off, off + n), () => onLimit());
      return;
    }
    needDrain = !dst.write(off === 0 && n === chunk.length ? chunk : chunk.subarray(off, off + n));
    step(chunk, off + n);
  };
  src.on('data', (chunk) => { onData(chunk.length); busy = true; src.pause(); step(chunk, 0); });
  src.on('end', () => { ended = true; if (!busy && !stopped) finish(); });
}

// ---------------------------------------------------------------- request handling
const agent = new (upstream.protocol === 'https:' ? https : http).Agent(
  { keepAlive: true, ...(caFile ? { ca: [...require('tls').rootCertificates, fs.readFileSync(caFile)] } : {}) });
const upstreamPrefix = upstream.pathname.replace(/\/+$/, '');
const HOP_BY_HOP = new Set(['connection', 'keep-alive']);

function handle(req, res) {
  if (req.url.startsWith('/__proxy/')) return control(req, res);
  stats.requests++;
  stats.by_method[req.method] = (stats.by_method[req.method] || 0) + 1;
  // Decide faults on arrival, always drawing the same numbers, so a seed reproduces a run.
  const eligible = !cfg.errorMethods.length || cfg.errorMethods.includes(req.method);
  let injectErr = rng() < cfg.errorRate && eligible;
  if (eligible && cfg.errorFirst > 0) { cfg.errorFirst--; injectErr = true; }
  const drop = rng() < cfg.dropRate;
  const fraction = 0.1 + 0.8 * rng();
  const code = cfg.errorCodes[Math.floor(rng() * cfg.errorCodes.length)];
  setTimeout(() => {
    if (res.destroyed) return; // client went away during the latency
    if (injectErr) injectError(req, res, code); else forward(req, res, drop, fraction, false);
  }, cfg.latencyMs);
}

// Injected error: the upstream is not contacted; the request body is drained first so the
// client connection stays usable (keep-alive) after the error reply.
function injectError(req, res, code) {
  stats.injected_errors++;
  // A 401 as Azure Blob refuses an expired bearer token (x-ms-error-code InvalidAuthenticationInfo).
  const name = { 401: 'InvalidAuthenticationInfo', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServerBusy' }[code] ||
    'InjectedError';
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${name}</Code><Message>injected by fault_proxy</Message></Error>`;
  const headers = { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) };
  if (cfg.retryAfter !== null) headers['Retry-After'] = cfg.retryAfter;
  if (code === 401) headers['x-ms-error-code'] = name;
  req.on('data', (c) => { stats.client_request_body_bytes += c.length; });
  req.on('end', () => { res.writeHead(code, headers); res.end(body); });
  req.resume();
}

function forward(req, res, drop, fraction, isRetry) {
  const reqLen = Number(req.headers['content-length'] || 0);
  const hasBody = reqLen > 0 || 'transfer-encoding' in req.headers;
  // Drop faults: requests with a known body of >= 2 bytes are cut after a fraction of the
  // request body (upstream sees an aborted request); all others after a fraction of the response.
  const dropRequest = drop && reqLen >= 2;
  let dropped = false;
  const doDrop = () => {
    if (dropped) return;
    dropped = true;
    stats.dropped++;
    req.socket.destroy();
    proxyReq.destroy();
  };
  const arrivedStats = stats;
  const part = isPartUpload(req);
  if (!isRetry) {
    stats.forwarded++;
    if (part) stats.part_requests++;
    inFlight++;
    stats.most_in_flight = Math.max(stats.most_in_flight, inFlight);
    let ended = false;
    res.on('close', () => { if (!ended) { ended = true; inFlight--; } });
  }
  const proxyReq = (upstream.protocol === 'https:' ? https : http).request({
    protocol: upstream.protocol, hostname: upstream.hostname, port: upstream.port, agent,
    method: req.method, path: upstreamPrefix + req.url, headers: req.rawHeaders, // raw: Host etc. untouched
  });
  proxyReq.on('response', (up) => {
    const m = req.method;
    up.on('data', (c) => {
      stats.upstream_response_bytes += c.length;
      stats.upstream_response_bytes_by_method[m] = (stats.upstream_response_bytes_by_method[m] || 0) + c.length;
    });
    const headers = [];
    for (let i = 0; i < up.rawHeaders.length; i += 2) {
      if (!HOP_BY_HOP.has(up.rawHeaders[i].toLowerCase())) headers.push(up.rawHeaders[i], up.rawHeaders[i + 1]);
    }
    const noBody = m === 'HEAD' || up.statusCode === 204 || up.statusCode === 304;
    const resLen = up.headers['content-length'] === undefined ? null : Number(up.headers['content-length']);
    if (drop && !dropRequest && (noBody || (resLen !== null && resLen < 2))) return doDrop();
    up.on('error', () => { if (!res.writableFinished) res.destroy(); }); // upstream died mid-body
    // Raw header array: Content-Length (also of HEAD replies) is passed through as-is.
    res.writeHead(up.statusCode, up.statusMessage, headers);
    if (noBody) { up.resume(); res.end(); return; }
    const dropResponse = drop && !dropRequest;
    pump(up, res, buckets(req.socket).down, {
      limit: dropResponse && resLen !== null ? Math.max(1, Math.floor(resLen * fraction)) : Infinity,
      dropAtEnd: dropResponse && resLen === null, // chunked: withhold the final chunk
      onLimit: doDrop,
    });
  });
  proxyReq.on('error', (err) => {
    if (dropped) return;
    // A pooled keep-alive socket may have been closed by the upstream just as we reused it;
    // retrying is safe when no request body was involved (as recommended by the Node docs).
    if (!isRetry && proxyReq.reusedSocket && err.code === 'ECONNRESET' && !hasBody && !res.headersSent) {
      return forward(req, res, drop, fraction, true);
    }
    if (res.headersSent) { res.destroy(); return; }
    const msg = `fault_proxy: upstream error: ${err.message}\n`;
    res.writeHead(502, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(msg) });
    res.end(msg);
  });
  res.on('close', () => { if (!res.writableFinished) proxyReq.destroy(); }); // client went away
  req.on('error', () => proxyReq.destroy());
  if (isRetry) return proxyReq.end();
  pump(req, proxyReq, buckets(req.socket).up, {
    onData: (n) => {
      stats.client_request_body_bytes += n;
      if (part) arrivedStats.part_body_bytes += n;
    },
    limit: dropRequest ? Math.max(1, Math.floor(reqLen * fraction)) : Infinity,
    onLimit: doDrop,
  });
}

// ---------------------------------------------------------------- control endpoints
function control(req, res) {
  const reply = (code, obj) => {
    const body = JSON.stringify(obj) + '\n';
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };
  const path = req.url.split('?')[0];
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => { body += d; if (body.length > 1e6) req.destroy(); });
  req.on('end', () => {
    if (path === '/__proxy/stats' && req.method === 'GET') return reply(200, { ...stats, in_flight: inFlight });
    if (path === '/__proxy/reset' && req.method === 'POST') { resetStats(); return reply(200, {}); }
    if (path === '/__proxy/config' && req.method === 'GET') return reply(200, cfg);
    if (path === '/__proxy/config' && req.method === 'POST') {
      try { return reply(200, applyConfig(cfg, JSON.parse(body || '{}'))); } catch (e) { return reply(400, { error: e.message }); }
    }
    reply(404, { error: `unknown control endpoint ${req.method} ${path}` });
  });
}

// ---------------------------------------------------------------- server
const server = tlsCert ? https.createServer({ cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey) }, handle)
  : http.createServer(handle);
server.requestTimeout = 0;          // Node's default (300 s) would cut slow multi-GiB uploads
server.keepAliveTimeout = 65000;    // idle client connections stay reusable (SDKs pool them)
server.headersTimeout = 66000;
const sep = listen.lastIndexOf(':');
const host = listen.slice(0, sep).replace(/^\[|\]$/g, '') || '127.0.0.1';
server.listen(Number(listen.slice(sep + 1)), host, () => {
  const port = server.address().port;
  if (portFile) { fs.writeFileSync(`${portFile}.tmp`, `${port}\n`); fs.renameSync(`${portFile}.tmp`, portFile); }
  console.log(`fault_proxy listening on ${host}:${port}`);
});
server.on('error', (e) => { console.error(`fault_proxy: ${e.message}`); process.exit(1); });
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { server.close(); server.closeAllConnections(); agent.destroy(); process.exit(0); });
}
