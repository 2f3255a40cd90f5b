// The official AWS SDK for JavaScript (@aws-sdk/client-s3 of testenv/node_modules, unmodified)
// against a shoald's S3 front door; run by tests/door_sdk_test.cc as
//   node door_sdk.js ENDPOINT BUCKET KEYS
// with DOOR_KEY=ACCESS:SECRET. Puts (one body, a stream, a multipart upload of 5 MiB parts),
// gets (whole, ranges), heads, lists KEYS keys created through the door (pages of 1,000, by
// delimiter), copies and deletes (DeleteObject, DeleteObjects); asserts what it reads and
// prints one JSON line: the digests of what it wrote (the test reads the backend), the
// payload mode the SDK signed each write with (x-amz-content-sha256, observed, not set), and
// how long creating the keys took.
'use strict';
const crypto = require('crypto');
const path = require('path');
const { Readable } = require('stream');
const modules = path.join(__dirname, '..', 'testenv', 'node_modules');
const s3 = require(path.join(modules, '@aws-sdk/client-s3'));

const MiB = 1024 * 1024;

function expect(cond, what) {
  if (!cond) {
    process.stderr.write('FAILED: ' + what + '\n');
    process.exit(1);
  }
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

async function bytes(out) {
  return Buffer.from(await out.Body.transformToByteArray());
}

async function main() {
  const [endpoint, bucket, keysArg] = process.argv.slice(2);
  const [accessKeyId, secretAccessKey] = process.env.DOOR_KEY.split(/:(.*)/s);
  const client = new s3.S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId, secretAccessKey },
  });
  // What the SDK sent, seen after it signed (nothing is changed).
  const modes = {};
  client.middlewareStack.add((next, context) => async (args) => {
    const h = args.request.headers;
    modes[context.commandName] = h['x-amz-content-sha256'] + (h['content-encoding'] ? ' ' + h['content-encoding'] : '');
    return next(args);
  }, { step: 'finalizeRequest', name: 'observePayloadMode', priority: 'low' });
  const out = {};

  // One body.
  const single = crypto.randomBytes(3 * MiB + 11);
  await client.send(new s3.PutObjectCommand({ Bucket: bucket, Key: 'sdk/single.bin', Body: single,
                                              ContentType: 'application/x-single', Metadata: { kind: 'single' } }));
  out.single = sha256(single);
  modes.PutObjectBody = modes.PutObjectCommand;

  // A stream of unknown framing: the SDK sends it aws-chunked.
  const streamed = crypto.randomBytes(10 * MiB + 5);
  const pieces = [];
  for (let i = 0; i < streamed.length; i += 256 * 1024) pieces.push(streamed.subarray(i, i + 256 * 1024));
  await client.send(new s3.PutObjectCommand({ Bucket: bucket, Key: 'sdk/stream.bin', Body: Readable.from(pieces),
                                              ContentLength: streamed.length }));
  out.stream = sha256(streamed);
  modes.PutObjectStream = modes.PutObjectCommand;
  delete modes.PutObjectCommand;

  // Multipart: three parts of 5 MiB and a last one of 1 MiB.
  const mp = crypto.randomBytes(16 * MiB + 3);
  const { UploadId } = await client.send(new s3.CreateMultipartUploadCommand({
    Bucket: bucket, Key: 'sdk/multipart.bin', Metadata: { parts: 'four' } }));
  const parts = [];
  for (let n = 1, at = 0; at < mp.length; n++, at += 5 * MiB) {
    const r = await client.send(new s3.UploadPartCommand({ Bucket: bucket, Key: 'sdk/multipart.bin', UploadId,
                                                           PartNumber: n, Body: mp.subarray(at, at + 5 * MiB) }));
    parts.push({ PartNumber: n, ETag: r.ETag });
  }
  await client.send(new s3.CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'sdk/multipart.bin', UploadId,
                                                            MultipartUpload: { Parts: parts } }));
  out.multipart = sha256(mp);
  expect(parts.length === 4, `four parts: ${parts.length}`);

  // Gets: whole, ranges (inside a chunk, a suffix, across the node's 8 MiB chunks), head.
  expect((await bytes(await client.send(new s3.GetObjectCommand({ Bucket: bucket, Key: 'sdk/multipart.bin' }))))
    .equals(mp), 'GET multipart whole');
  expect((await bytes(await client.send(new s3.GetObjectCommand({ Bucket: bucket, Key: 'sdk/stream.bin' }))))
    .equals(streamed), 'GET stream whole');
  const ranges = [['bytes=100-199', mp.subarray(100, 200)], ['bytes=-10', mp.subarray(mp.length - 10)],
                  [`bytes=${8 * MiB - 5}-${8 * MiB + 4}`, mp.subarray(8 * MiB - 5, 8 * MiB + 5)]];
  for (const [range, want] of ranges) {
    const r = await client.send(new s3.GetObjectCommand({ Bucket: bucket, Key: 'sdk/multipart.bin', Range: range }));
    expect((await bytes(r)).equals(want), `range ${range}`);
    expect(r.ContentRange.endsWith('/' + mp.length), `Content-Range of ${range}: ${r.ContentRange}`);
  }
  const head = await client.send(new s3.HeadObjectCommand({ Bucket: bucket, Key: 'sdk/single.bin' }));
  expect(head.ContentLength === single.length && head.ContentType === 'application/x-single' &&
         head.Metadata.kind === 'single', `HEAD: ${JSON.stringify(head)}`);

  // Copy.
  const copied = await client.send(new s3.CopyObjectCommand({ Bucket: bucket, Key: 'sdk/copy.bin',
                                                              CopySource: `${bucket}/sdk/multipart.bin` }));
  expect(copied.CopyObjectResult.ETag, 'CopyObjectResult.ETag');
  expect((await bytes(await client.send(new s3.GetObjectCommand({ Bucket: bucket, Key: 'sdk/copy.bin' }))))
    .equals(mp), 'GET copy');

  // KEYS keys through the door, 32 at a time.
  const count = Number(keysArg);
  const keyOf = (i) => `sdk/many/d${i % 4}/k${String(i).padStart(5, '0')}`;
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      await client.send(new s3.PutObjectCommand({ Bucket: bucket, Key: keyOf(i), Body: Buffer.from(String(i)) }));
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  out.create_ms = Date.now() - started;
  // Listed in pages of 1,000.
  const listAll = async (extra) => {
    const keys = [], prefixes = [];
    let token, pages = 0;
    do {
      const r = await client.send(new s3.ListObjectsV2Command({ Bucket: bucket, Prefix: 'sdk/many/', ContinuationToken: token,
                                                                ...extra }));
      pages++;
      (r.Contents || []).forEach((c) => keys.push(c.Key));
      (r.CommonPrefixes || []).forEach((p) => prefixes.push(p.Prefix));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return { keys, prefixes, pages };
  };
  const all = await listAll({});
  const want = Array.from({ length: count }, (_, i) => keyOf(i)).sort();
  expect(JSON.stringify(all.keys) === JSON.stringify(want), `listed ${all.keys.length} keys of ${count}, in order`);
  out.keys = all.keys.length;
  out.pages = all.pages;
  const byDir = await listAll({ Delimiter: '/' });
  out.prefixes = byDir.prefixes;
  expect(byDir.keys.length === 0, 'no object directly under sdk/many/');
  const small = await listAll({ Prefix: 'sdk/many/d1/', MaxKeys: 200 });
  out.d1_keys = small.keys.length;
  out.d1_pages = small.pages;

  // Deletes: one, then all the keys, 1,000 a request.
  await client.send(new s3.DeleteObjectCommand({ Bucket: bucket, Key: 'sdk/single.bin' }));
  let deleted = 0;
  for (let i = 0; i < want.length; i += 1000) {
    const r = await client.send(new s3.DeleteObjectsCommand({ Bucket: bucket, Delete: {
      Objects: want.slice(i, i + 1000).map((Key) => ({ Key })) } }));
    expect(!r.Errors || r.Errors.length === 0, `DeleteObjects errors: ${JSON.stringify(r.Errors)}`);
    deleted += (r.Deleted || []).length;
  }
  out.deleted = deleted;
  out.left = (await listAll({})).keys.length;
  let gone = null;
  try {
    await client.send(new s3.HeadObjectCommand({ Bucket: bucket, Key: 'sdk/single.bin' }));
  } catch (e) {
    gone = e.$metadata.httpStatusCode;
  }
  out.single_after_delete = gone;
  out.modes = modes;
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write('FAILED: ' + (e.stack || e) + '\n');
  process.exit(1);
});
