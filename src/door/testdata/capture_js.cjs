// Captures requests signed by the npm SDKs, unmodified, through a loopback recorder:
//   NODE_PATH=testenv/node_modules node capture_js.cjs OUT_DIR S3_KEY S3_SECRET AZ_ACCOUNT AZ_KEY
// @aws-sdk/client-s3: PutObject with a stream body (aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER
// with x-amz-checksum-crc32 trailer, its default) and with a buffer. @smithy/signature-v4 (the
// client's signer): a STREAMING-AWS4-HMAC-SHA256-PAYLOAD request, its seed signature from sign()
// and each chunk's from signEvent() (empty headers: the chunk string to sign), the trailer
// signature from signString(). @azure/storage-blob: Put Blob with Shared Key; blob and account SAS.
"use strict";
const http = require("http");
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const { Readable } = require("stream");
const { S3Client, PutObjectCommand, GetObjectCommand } = require("@aws-sdk/client-s3");
const { SignatureV4 } = require("@smithy/signature-v4");
const blob = require("@azure/storage-blob");

const [out, s3Key, s3Secret, account, accountKey] = process.argv.slice(2);
let label = "unlabelled";
const counts = {};

function save(rec) {
  const n = counts[label] || 0;
  counts[label] = n + 1;
  fs.writeFileSync(path.join(out, `${label}_${n}.json`), JSON.stringify(rec));
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const [p, q] = req.url.split("?");
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
    save({ method: req.method, path: p, query: q || "", headers, body_b64: Buffer.concat(chunks).toString("base64") });
    const isAzure = "x-ms-version" in req.headers;
    const body = req.method === "GET" ? Buffer.from("0123456789") : Buffer.alloc(0);
    res.writeHead(req.method === "PUT" && isAzure ? 201 : 200, {
      ETag: '"0x8D9"', "Last-Modified": "Thu, 03 Dec 2026 16:00:00 GMT", "Content-Length": body.length,
    });
    res.end(body);
  });
});

class NodeSha256 {  // the hash interface SignatureV4 takes (what @smithy/hash-node does)
  constructor(secret) { this.h = secret ? crypto.createHmac("sha256", secret) : crypto.createHash("sha256"); }
  update(d) { this.h.update(typeof d === "string" ? Buffer.from(d) : Buffer.from(d)); }
  async digest() { return new Uint8Array(this.h.digest()); }
}

function send(url, method, headers, body) {
  return new Promise((resolve) => {
    const req = http.request(url, { method, headers }, (res) => { res.resume(); res.on("end", resolve); });
    req.on("error", (e) => { console.error(e); resolve(); });
    req.end(body);
  });
}

async function attempt(name, fn) {
  label = name;
  try { await fn(); } catch (e) { console.error(name, e.name, e.message); }
}

async function main() {
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { accessKeyId: s3Key, secretAccessKey: s3Secret };
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials, maxAttempts: 1 });
  const data = Buffer.alloc(200000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;

  await attempt("js_put_stream", () => s3.send(new PutObjectCommand({
    Bucket: "models", Key: "dir/stream obj.bin", ContentLength: data.length,
    Body: Readable.from([data.subarray(0, 70000), data.subarray(70000, 140001), data.subarray(140001)]),
  })));
  await attempt("js_put_buffer", () => s3.send(new PutObjectCommand({
    Bucket: "models", Key: "dir/buffer.bin", Body: data.subarray(0, 5000), Metadata: { origin: "js" },
  })));
  await attempt("js_get", () => s3.send(new GetObjectCommand({ Bucket: "models", Key: "dir/a b.bin", Range: "bytes=0-9" }))
    .then((r) => r.Body.transformToByteArray()));

  // Signed aws-chunked, with and without a trailer.
  const signer = new SignatureV4({ credentials, region: "us-east-1", service: "s3", sha256: NodeSha256,
    uriEscapePath: false, applyChecksum: false });
  for (const withTrailer of [false, true]) {
    label = withTrailer ? "js_signed_chunks_trailer" : "js_signed_chunks";
    const signingDate = new Date();
    const payload = data.subarray(0, 150000);
    const headers = {
      host: `127.0.0.1:${port}`,
      "content-encoding": "aws-chunked",
      "x-amz-content-sha256": withTrailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "x-amz-decoded-content-length": String(payload.length),
    };
    if (withTrailer) headers["x-amz-trailer"] = "x-amz-checksum-crc32c";
    const signed = await signer.sign({ method: "PUT", protocol: "http:", hostname: "127.0.0.1", port,
      path: "/models/dir/signed%20chunks.bin", query: {}, headers }, { signingDate });
    const seed = /Signature=([0-9a-f]+)/.exec(signed.headers.authorization)[1];
    const parts = [];
    let prior = seed;
    const sizes = [65536, 65536, payload.length - 131072, 0];
    let off = 0;
    for (const size of sizes) {
      const chunk = payload.subarray(off, off + size);
      off += size;
      const sig = await signer.signEvent({ headers: new Uint8Array(0), payload: chunk }, { signingDate, priorSignature: prior });
      prior = sig;
      parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${sig}\r\n`));
      if (size > 0) parts.push(chunk, Buffer.from("\r\n"));
    }
    if (withTrailer) {
      // CRC32C of the payload, as the trailer carries it (node has no CRC32C: a table here).
      let crc = 0xffffffff;
      for (const b of payload) { crc ^= b; for (let k = 0; k < 8; k++) crc = (crc & 1) ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1; }
      crc = (crc ^ 0xffffffff) >>> 0;
      const value = Buffer.from([crc >>> 24, (crc >>> 16) & 255, (crc >>> 8) & 255, crc & 255]).toString("base64");
      const trailer = `x-amz-checksum-crc32c:${value}\n`;
      const { shortDate, longDate } = { shortDate: signed.headers["x-amz-date"].slice(0, 8), longDate: signed.headers["x-amz-date"] };
      const hash = crypto.createHash("sha256").update(trailer).digest("hex");
      const toSign = ["AWS4-HMAC-SHA256-TRAILER", longDate, `${shortDate}/us-east-1/s3/aws4_request`, prior, hash].join("\n");
      const tsig = await signer.signString(toSign, { signingDate });
      parts.push(Buffer.from(`x-amz-checksum-crc32c:${value}\r\nx-amz-trailer-signature:${tsig}\r\n\r\n`));
    } else {
      parts.push(Buffer.from("\r\n"));
    }
    const body = Buffer.concat(parts);
    const h = { ...signed.headers, "content-length": String(body.length) };
    await send(`${endpoint}/models/dir/signed%20chunks.bin`, "PUT", h, body);
  }

  // Azure.
  const cred = new blob.StorageSharedKeyCredential(account, accountKey);
  const svc = new blob.BlobServiceClient(`${endpoint}/${account}`, cred, { retryOptions: { maxTries: 1 } });
  const bb = svc.getContainerClient("data").getBlockBlobClient("dir/js blob+1.bin");
  await attempt("azjs_put", () => bb.upload(data.subarray(0, 3000), 3000, { metadata: { origin: "js" } }));
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const expiresOn = new Date(now.getTime() + 3600 * 1000);
  const blobSas = blob.generateBlobSASQueryParameters({
    containerName: "data", blobName: "dir/js blob+1.bin", permissions: blob.BlobSASPermissions.parse("rw"),
    startsOn: new Date(now.getTime() - 300 * 1000), expiresOn, ipRange: { start: "127.0.0.1" },
    protocol: blob.SASProtocol.HttpsAndHttp,
  }, cred).toString();
  label = "azjs_blob_sas";
  await send(`${bb.url}?${blobSas}`, "GET", {}, undefined);
  const accountSas = blob.generateAccountSASQueryParameters({
    expiresOn, permissions: blob.AccountSASPermissions.parse("rl"), services: "b", resourceTypes: "co",
    encryptionScope: undefined,
  }, cred).toString();
  label = "azjs_account_sas";
  await send(`${endpoint}/${account}/data?restype=container&comp=list&${accountSas}`, "GET", {}, undefined);
  const queueSas = blob.generateAccountSASQueryParameters({
    expiresOn, permissions: blob.AccountSASPermissions.parse("r"), services: "q", resourceTypes: "o",
  }, cred).toString();
  label = "azjs_account_sas_queue";
  await send(`${endpoint}/${account}/data/x?${queueSas}`, "GET", {}, undefined);
  server.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
