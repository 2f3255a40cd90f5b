#!/usr/bin/env node
// s3rver.js - s3rver (testenv/node_modules) as the tests run it, with the one S3 call it lacks
// that shoald makes: ListParts (GET /BUCKET/KEY?uploadId=ID), which s3rver 3.7 answers 405.
// The answer is read from s3rver's own store of the upload (its uploads directory: a file per
// part, PART.md5 written once the part is whole), as S3 would give it: PartNumber, Size and
// ETag (the part's MD5, quoted), paged by max-parts and part-number-marker; NoSuchUpload (404)
// for an upload s3rver does not hold. Everything else is s3rver's. Same flags as s3rver's CLI:
//   node s3rver.js --directory DIR --address 127.0.0.1 --port N [--silent] [--list-parts-page N]
// --list-parts-page N: ListParts pages hold at most N parts (default 1000, as S3's), so a test
// exercises the client's paging with a few parts.
'use strict';
const fs = require('fs');
const path = require('path');

const S3rver = require(path.join(__dirname, '..', '..', 'testenv', 'node_modules', 's3rver'));

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const listPartsPage = Math.max(1, Math.min(1000, Number(arg('--list-parts-page', '1000')) || 1000));

function xmlEscape(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function errorReply(ctx, status, code, message) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`;
}

// ListParts, before s3rver's own middleware (which would answer 405).
function listParts(server) {
  return async (ctx, next) => {
    const uploadId = ctx.query.uploadId;
    const m = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
    if (ctx.method !== 'GET' || uploadId === undefined || !m) return next();
    const [bucket, key] = [m[1], decodeURIComponent(m[2])];
    if (!/^[A-Za-z0-9._-]+$/.test(uploadId) || uploadId.startsWith('.')) {
      return errorReply(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
    }
    const dir = path.join(server.store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    let names;
    try {
      names = await fs.promises.readdir(dir);
    } catch (err) {
      return errorReply(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
    }
    const marker = Number(ctx.query['part-number-marker'] || 0);
    const max = Math.min(listPartsPage, Number(ctx.query['max-parts'] || 1000));
    const numbers = names.filter((n) => /^\d+$/.test(n) && names.includes(`${n}.md5`))
      .map(Number).filter((n) => n > marker).sort((a, b) => a - b);
    const page = numbers.slice(0, max);
    let parts = '';
    for (const n of page) {
      const file = path.join(dir, String(n));
      const [stat, md5] = await Promise.all([fs.promises.stat(file), fs.promises.readFile(`${file}.md5`, 'utf8')]);
      parts += `<Part><PartNumber>${n}</PartNumber><LastModified>${stat.mtime.toISOString()}</LastModified>` +
        `<ETag>&quot;${xmlEscape(md5.trim())}&quot;</ETag><Size>${stat.size}</Size></Part>`;
    }
    const truncated = numbers.length > page.length;
    ctx.status = 200;
    ctx.type = 'application/xml';
    ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${xmlEscape(uploadId)}</UploadId>` +
      `<PartNumberMarker>${marker}</PartNumberMarker>` +
      `<NextPartNumberMarker>${page.length ? page[page.length - 1] : marker}</NextPartNumberMarker>` +
      `<MaxParts>${max}</MaxParts><IsTruncated>${truncated}</IsTruncated>${parts}</ListPartsResult>`;
  };
}

const directory = arg('--directory');
if (!directory) {
  console.error('usage: node s3rver.js --directory DIR [--address HOST] [--port N] [--silent]');
  process.exit(2);
}
fs.mkdirSync(directory, { recursive: true });
const server = new S3rver({
  directory,
  address: arg('--address', '127.0.0.1'),
  port: Number(arg('--port', '4568')),
  silent: process.argv.includes('--silent'),
});
server.middleware.unshift(listParts(server));
server.run().catch((err) => {
  console.error(`s3rver did not start: ${err.message}`);
  process.exit(1);
});
