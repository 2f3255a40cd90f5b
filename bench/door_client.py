"""The SDK side of bench/door_bench.sh: one timed operation with an unmodified SDK (Debian's
python3-boto3 or python3-azure), run as /usr/bin/python3. Prints the seconds the operation took
(the interpreter's start and imports are not counted) and a sha256 for reads. A read goes to a
file in /dev/shm (memory), as both SDKs' parallel downloads want a file; it is hashed after
the timing, as `shoal cat` is not timed with a hash either.

  s3-get ENDPOINT BUCKET KEY             boto3 download_file (its default TransferConfig)
  s3-put ENDPOINT BUCKET KEY FILE        boto3 upload_file (its default TransferConfig)
  az-get CONNECTION CONTAINER BLOB       BlobClient.download_blob(max_concurrency=8)
  az-put CONNECTION CONTAINER BLOB FILE  BlobClient.upload_blob(max_concurrency=8)
  s3-url ENDPOINT BUCKET KEY             prints a presigned GET URL (SigV4, an hour), for curl
  az-url CONNECTION CONTAINER BLOB       prints a GET URL with a read SAS (an hour), for curl

S3 keys come from DOOR_KEY (ID:SECRET).
"""
import hashlib
import os
import sys
import time


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            h.update(piece)
    return h.hexdigest()


def s3(endpoint):
    import boto3
    from botocore.config import Config
    key_id, secret = os.environ["DOOR_KEY"].split(":", 1)
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key_id, aws_secret_access_key=secret,
                        region_name="us-east-1", config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def main():
    op, where, bucket, key = sys.argv[1:5]
    digest = ""
    if op == "s3-url":
        print(s3(where).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600))
        return
    if op == "az-url":
        import datetime
        from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas
        blob = BlobServiceClient.from_connection_string(where).get_blob_client(bucket, key)
        sas = generate_blob_sas(blob.account_name, bucket, key, account_key=blob.credential.account_key,
                                permission=BlobSasPermissions(read=True),
                                expiry=datetime.datetime.utcnow() + datetime.timedelta(hours=1))
        print(f"{blob.url}?{sas}")
        return
    if op.startswith("s3-"):
        c = s3(where)
        if op == "s3-get":
            path = f"/dev/shm/door_client.{os.getpid()}"  # in memory, hashed after the timing
            try:
                t0 = time.monotonic()
                c.download_file(bucket, key, path)
                took = time.monotonic() - t0
                digest = file_sha256(path)
            finally:
                os.unlink(path)
        else:
            t0 = time.monotonic()
            c.upload_file(sys.argv[5], bucket, key)
            took = time.monotonic() - t0
    else:
        from azure.storage.blob import BlobServiceClient
        blob = BlobServiceClient.from_connection_string(where).get_blob_client(bucket, key)
        if op == "az-get":
            # Its parallel download needs a seekable target: a file in memory (tmpfs), hashed after.
            path = f"/dev/shm/door_client.{os.getpid()}"
            try:
                with open(path, "wb") as f:
                    t0 = time.monotonic()
                    blob.download_blob(max_concurrency=8).readinto(f)
                    took = time.monotonic() - t0
                digest = file_sha256(path)
            finally:
                os.unlink(path)
        else:
            with open(sys.argv[5], "rb") as f:
                t0 = time.monotonic()
                blob.upload_blob(f, overwrite=True, max_concurrency=8)
                took = time.monotonic() - t0
    print(f"{took:.3f} {digest}")


if __name__ == "__main__":
    main()
