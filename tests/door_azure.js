// @azure/storage-blob (from testenv/node_modules, unmodified) against a shoald's Azure Blob front
// door, run by tests/door_azure_test.cc as:
//   node door_azure.js ENDPOINT CONTAINER PREFIX
// ENDPOINT is http://NODE:PORT/ACCOUNT; the account and key come from DOOR_AZURE_ACCOUNT and
// DOOR_AZURE_KEY. Uploads a 12 MiB + 3 blob in 4 MiB blocks and a small one with metadata,
// downloads both (whole and a range), lists by page and by hierarchy, deletes the small one;
// prints one JSON line of what it saw, exits 1 with the reason when an expectation fails.
'use strict';
const crypto = require('crypto');
const path = require('path');
const blob = require(path.join(__dirname, '..', 'testenv', 'node_modules', '@azure/storage-blob'));

function expect(cond, what) {
  if (!cond) {
    process.stderr.write('FAILED: ' + what + '\n');
    process.exit(1);
  }
}

async function main() {
  const [endpoint, container, prefix] = process.argv.slice(2);
  const cs = `DefaultEndpointsProtocol=http;AccountName=${process.env.DOOR_AZURE_ACCOUNT};` +
             `AccountKey=${process.env.DOOR_AZURE_KEY};BlobEndpoint=${endpoint};`;
  const svc = blob.BlobServiceClient.fromConnectionString(cs, {retryOptions: {maxTries: 1}});
  const cc = svc.getContainerClient(container);
  const big = crypto.createHash('sha256').update('node').digest();
  const body = Buffer.alloc((12 << 20) + 3);
  for (let i = 0; i < body.length; i += big.length) big.copy(body, i, 0, Math.min(big.length, body.length - i));
  const bb = cc.getBlockBlobClient(prefix + 'big.bin');
  await bb.uploadData(body, {blockSize: 4 << 20, maxSingleShotSize: 4 << 20, concurrency: 4,
                             blobHTTPHeaders: {blobContentType: 'application/octet-stream'}});
  const blocks = await bb.getBlockList('committed');
  expect(blocks.committedBlocks.length === 4, `${blocks.committedBlocks.length} blocks committed`);
  const back = await bb.downloadToBuffer();
  expect(back.equals(body), `read back ${back.length} bytes of ${body.length}`);
  const part = await bb.downloadToBuffer(5 << 20, 100);
  expect(part.equals(body.subarray(5 << 20, (5 << 20) + 100)), 'a range');
  const small = cc.getBlockBlobClient(prefix + 'dir/small.txt');
  await small.upload('hello door', 10, {metadata: {team: 'vision'}, blobHTTPHeaders: {blobContentType: 'text/plain'}});
  const props = await small.getProperties();
  expect(props.contentType === 'text/plain' && props.metadata.team === 'vision' && props.contentLength === 10,
         `properties ${props.contentType} ${JSON.stringify(props.metadata)} ${props.contentLength}`);
  let pages = 0, names = [];
  for await (const page of cc.listBlobsFlat({prefix}).byPage({maxPageSize: 1})) {
    pages++;
    names = names.concat(page.segment.blobItems.map((b) => b.name));
  }
  const tops = [];
  for await (const item of cc.listBlobsByHierarchy('/', {prefix})) tops.push(item.kind + ':' + item.name);
  await small.delete();
  let code = null;
  try {
    await small.getProperties();
  } catch (e) {
    code = e.statusCode;
  }
  console.log(JSON.stringify({pages, names, tops, deleted_status: code,
                              sha256: crypto.createHash('sha256').update(body).digest('hex')}));
}

main().catch((e) => {
  process.stderr.write('FAILED: ' + (e.stack || e) + '\n');
  process.exit(1);
});
