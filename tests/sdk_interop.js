// The official SDKs' side of the interoperability test (tests/sdk_interop_test.cc):
//   node sdk_interop.js azure-put|azure-get|s3-put|s3-get BUCKET KEY FILE
//   node sdk_interop.js azure-sas PERMISSIONS   (prints an account SAS token, e.g. for "rwdlac")
//   node sdk_interop.js azure-blocklist CONTAINER KEY   (prints the committed block ids, JSON)
//   node sdk_interop.js azure-uncommitted CONTAINER KEY (prints the staged blocks, JSON [{name, size}])
//   node sdk_interop.js azure-stage CONTAINER KEY BLOCKID SIZE   (stages SIZE bytes of 'x' as block BLOCKID)
//   node sdk_interop.js azure-many CONTAINER PREFIX COUNT   (COUNT blobs PREFIX000000.. of 1 byte, 64 at a time)
//   node sdk_interop.js azure-meta|s3-meta BUCKET KEY -   (prints the object's content headers
//     and user metadata as the SDK reads them: JSON {content_type, ..., user: {name: value}})
// Azure: AZURE_STORAGE_CONNECTION_STRING. S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION, AWS_ENDPOINT_URL (path-style). Only loopback endpoints are ever given.
'use strict';
const fs = require('fs');
const path = require('path');
const modules = path.join(__dirname, '..', 'testenv', 'node_modules');

async function main() {
  const [op, bucket, key, file] = process.argv.slice(2);
  if (op === 'azure-sas') {
    const blob = require(path.join(modules, '@azure/storage-blob'));
    const cs = process.env.AZURE_STORAGE_CONNECTION_STRING;
    const account = /AccountName=([^;]+)/.exec(cs)[1];
    const accountKey = /AccountKey=([^;]+)/.exec(cs)[1];
    const sas = blob.generateAccountSASQueryParameters({
      expiresOn: new Date(Date.now() + 3600 * 1000),
      permissions: blob.AccountSASPermissions.parse(bucket),
      services: blob.AccountSASServices.parse('b').toString(),
      resourceTypes: blob.AccountSASResourceTypes.parse('sco').toString(),
      protocol: blob.SASProtocol.HttpsAndHttp,
    }, new blob.StorageSharedKeyCredential(account, accountKey));
    process.stdout.write(sas.toString());
    return;
  }
  if (op === 'azure-blocklist') {
    const { BlobServiceClient } = require(path.join(modules, '@azure/storage-blob'));
    const service = BlobServiceClient.fromConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING);
    const list = await service.getContainerClient(bucket).getBlockBlobClient(key).getBlockList('committed');
    process.stdout.write(JSON.stringify((list.committedBlocks || []).map((b) => b.name)));
    return;
  }
  if (op === 'azure-uncommitted') {
    const { BlobServiceClient } = require(path.join(modules, '@azure/storage-blob'));
    const service = BlobServiceClient.fromConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING);
    const list = await service.getContainerClient(bucket).getBlockBlobClient(key).getBlockList('uncommitted');
    process.stdout.write(JSON.stringify((list.uncommittedBlocks || []).map((b) => ({ name: b.name, size: b.size }))));
    return;
  }
  if (op === 'azure-stage') {
    const { BlobServiceClient } = require(path.join(modules, '@azure/storage-blob'));
    const service = BlobServiceClient.fromConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING);
    const size = Number(process.argv[6]);
    await service.getContainerClient(bucket).getBlockBlobClient(key).stageBlock(file, Buffer.alloc(size, 'x'), size);
    return;
  }
  if (op === 'azure-many') {
    const { BlobServiceClient } = require(path.join(modules, '@azure/storage-blob'));
    const service = BlobServiceClient.fromConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING);
    const container = service.getContainerClient(bucket);
    const count = Number(file);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) {
        const name = key + String(i).padStart(6, '0');
        await container.getBlockBlobClient(name).upload('x', 1);
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    process.stdout.write(`${count}\n`);
    return;
  }
  if (op === 'azure-meta') {
    const { BlobServiceClient } = require(path.join(modules, '@azure/storage-blob'));
    const service = BlobServiceClient.fromConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING);
    const p = await service.getContainerClient(bucket).getBlockBlobClient(key).getProperties();
    printMeta(p.contentType, p.contentEncoding, p.contentLanguage, p.contentDisposition, p.cacheControl,
      p.metadata);
    return;
  }
  if (!op || !bucket || !key || !file) {
    console.error('usage: node sdk_interop.js azure-put|azure-get|s3-put|s3-get BUCKET KEY FILE');
    process.exit(2);
  }
  if (op.startsWith('azure-')) {
    const { BlobServiceClient } = require(path.join(modules, '@azure/storage-blob'));
    const service = BlobServiceClient.fromConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING);
    const blob = service.getContainerClient(bucket).getBlockBlobClient(key);
    if (op === 'azure-put') {
      // 4 MiB blocks: a large file goes up as Put Block + Put Block List.
      await blob.uploadFile(file, { blockSize: 4 << 20, concurrency: 4, maxSingleShotSize: 4 << 20 });
    } else {
      await blob.downloadToFile(file);
    }
    return;
  }
  const { S3Client, PutObjectCommand, GetObjectCommand, HeadObjectCommand } = require(path.join(modules, '@aws-sdk/client-s3'));
  const s3 = new S3Client({
    region: process.env.AWS_REGION || 'us-east-1',
    endpoint: process.env.AWS_ENDPOINT_URL,
    forcePathStyle: true,
  });
  if (op === 's3-meta') {
    const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    printMeta(h.ContentType, h.ContentEncoding, h.ContentLanguage, h.ContentDisposition, h.CacheControl,
      h.Metadata);
  } else if (op === 's3-put') {
    const body = fs.readFileSync(file);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  } else {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = await out.Body.transformToByteArray();
    fs.writeFileSync(file, bytes);
  }
}

function printMeta(type, encoding, language, disposition, cacheControl, user) {
  process.stdout.write(JSON.stringify({
    content_type: type || '', content_encoding: encoding || '', content_language: language || '',
    content_disposition: disposition || '', cache_control: cacheControl || '', user: user || {},
  }));
}

main().catch((err) => {
  console.error(`sdk_interop: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
