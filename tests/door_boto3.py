"""boto3 (Debian's python3-boto3, unmodified) against a shoald's S3 front door.

Run by tests/door_test.cc as: /usr/bin/python3 door_boto3.py STEP ENDPOINT [ARGS...]
Each step asserts what it expects and prints one JSON line of what it saw; exit 1 with the
reason when an expectation fails. Keys come from the environment (DOOR_KEY_*), as the test
wrote them into the node's --credentials file.
"""
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request

import boto3
import botocore
from botocore.config import Config


def client(endpoint, key="RW"):
    ak, sk = os.environ["DOOR_KEY_" + key].split(":", 1)
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def pattern(seed, n):
    """n bytes that depend on seed; pattern(seed, m) is the first m bytes of pattern(seed, n)."""
    return hashlib.shake_256(str(seed).encode()).digest(n)


def expect(cond, what):
    if not cond:
        print("FAILED: " + what, file=sys.stderr)
        sys.exit(1)


def same_write(answered, written):
    """Whether an ETag answered for an object names the write acknowledged as `written`: that
    local version itself, or (the write uploaded in between) the store's ETag, never another local one."""
    return answered == written or not answered.startswith('"local-')


def error_code(fn):
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


def step_basic(endpoint, bucket):
    s3 = client(endpoint)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    expect(bucket in names, f"ListBuckets names {bucket}: {names}")
    s3.head_bucket(Bucket=bucket)
    loc = s3.get_bucket_location(Bucket=bucket)
    expect(loc.get("LocationConstraint") in (None, ""), f"us-east-1 location: {loc}")
    sizes = {"empty": 0, "small.txt": 1000, "dir/large.bin": 20 * 1024 * 1024 + 7}
    for i, (key, size) in enumerate(sizes.items()):
        body = pattern(i, size)
        put = s3.put_object(Bucket=bucket, Key="basic/" + key, Body=body)
        # The write's ETag names it until and after its upload (docs/front-door.md, "What an ETag
        # is"): the GET answers it, or the store's once the upload landed, and If-Match takes it.
        got = s3.get_object(Bucket=bucket, Key="basic/" + key, IfMatch=put["ETag"])
        data = got["Body"].read()
        expect(data == body, f"{key}: read back {len(data)} bytes, wrote {size}")
        expect(same_write(got["ETag"], put["ETag"]), f"{key}: GET's ETag {got['ETag']} is neither PUT's "
               f"{put['ETag']} nor a store's")
        head = s3.head_object(Bucket=bucket, Key="basic/" + key)
        expect(head["ContentLength"] == size, f"{key}: HEAD says {head['ContentLength']}")
    body = pattern(2, 20 * 1024 * 1024 + 7)
    r = s3.get_object(Bucket=bucket, Key="basic/dir/large.bin", Range="bytes=100-199")
    expect(r["Body"].read() == body[100:200] and r["ContentRange"] == f"bytes 100-199/{len(body)}", "range 100-199")
    r = s3.get_object(Bucket=bucket, Key="basic/dir/large.bin", Range="bytes=-10")
    expect(r["Body"].read() == body[-10:], "suffix range")
    r = s3.get_object(Bucket=bucket, Key="basic/dir/large.bin", Range=f"bytes={8 << 20}-")
    expect(r["Body"].read() == body[8 << 20:], "open range across chunks")
    etag = s3.head_object(Bucket=bucket, Key="basic/small.txt")["ETag"]
    code, status = error_code(lambda: s3.get_object(Bucket=bucket, Key="basic/small.txt", IfMatch='"nope"'))
    expect(status == 412 and code == "PreconditionFailed", f"If-Match mismatch: {code} {status}")
    code, status = error_code(lambda: s3.get_object(Bucket=bucket, Key="basic/small.txt", IfNoneMatch=etag))
    expect(status == 304, f"If-None-Match equal: {code} {status}")
    code, status = error_code(lambda: s3.get_object(Bucket=bucket, Key="basic/small.txt", Range="bytes=5000-"))
    expect(status == 416 and code == "InvalidRange", f"range past the end: {code} {status}")
    code, status = error_code(lambda: s3.get_object(Bucket=bucket, Key="basic/none"))
    expect(code == "NoSuchKey" and status == 404, f"missing key: {code} {status}")
    code, status = error_code(lambda: s3.get_object(Bucket="not-configured", Key="x"))
    expect(code == "NoSuchBucket", f"unknown bucket: {code} {status}")
    # Metadata kept through to the backend object, and read back.
    s3.put_object(Bucket=bucket, Key="basic/meta.pt", Body=b"weights", ContentType="application/x-pytorch",
                  Metadata={"rank": "3", "run_id": "llm-7b"})
    head = s3.head_object(Bucket=bucket, Key="basic/meta.pt")
    expect(head["ContentType"] == "application/x-pytorch", f"ContentType {head['ContentType']}")
    expect(head["Metadata"] == {"rank": "3", "run_id": "llm-7b"}, f"Metadata {head['Metadata']}")
    code, status = error_code(lambda: s3.put_object(Bucket=bucket, Key="basic/badmeta", Body=b"x",
                                                    Metadata={"not-a-c#-name": "v"}))
    expect(code == "InvalidArgument" and status == 400, f"a name Azure cannot hold: {code} {status}")
    s3.delete_object(Bucket=bucket, Key="basic/empty")
    code, status = error_code(lambda: s3.head_object(Bucket=bucket, Key="basic/empty"))
    expect(status == 404, f"deleted key still answers: {status}")
    print(json.dumps({"step": "basic", "ok": True}))


def step_list(endpoint, bucket, prefix, count):
    s3 = client(endpoint)
    count = int(count)
    keys = []
    pages = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}):
        pages += 1
        keys += [o["Key"] for o in page.get("Contents", [])]
    expect(len(keys) == count and len(set(keys)) == count, f"V2 listed {len(keys)} keys ({len(set(keys))} distinct), want {count}")
    expect(keys == sorted(keys), "V2 keys in order")
    expect(pages == (count + 999) // 1000, f"V2 pages {pages}")
    v1 = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 700}):
        v1 += [o["Key"] for o in page.get("Contents", [])]
    expect(v1 == keys, f"V1 with markers listed {len(v1)} keys")
    top = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
    dirs = [p["Prefix"] for p in top.get("CommonPrefixes", [])]
    print(json.dumps({"step": "list", "keys": len(keys), "pages": pages, "prefixes": dirs,
                      "top_objects": len(top.get("Contents", []))}))


def step_delete_many(endpoint, bucket, prefix):
    s3 = client(endpoint)
    keys = [f"{prefix}{i:03d}" for i in range(20)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    deleted = sorted(d["Key"] for d in r.get("Deleted", []))
    expect(deleted == keys and not r.get("Errors"), f"DeleteObjects: {r}")
    for k in keys[:3]:
        code, status = error_code(lambda: s3.head_object(Bucket=bucket, Key=k))
        expect(status == 404, f"{k} still there after DeleteObjects")
    print(json.dumps({"step": "delete-many", "deleted": len(deleted)}))


def step_refusals(endpoint, bucket):
    seen = {}
    bad = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=os.environ["DOOR_KEY_RW"].split(":")[0],
                       aws_secret_access_key="wrong-secret", region_name="us-east-1",
                       config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    seen["wrong-secret"] = error_code(lambda: bad.put_object(Bucket=bucket, Key="refused/a", Body=b"x"))
    unknown = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="AKIDNOSUCHKEY0000",
                           aws_secret_access_key="whatever", region_name="us-east-1",
                           config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    seen["unknown-key"] = error_code(lambda: unknown.get_object(Bucket=bucket, Key="basic/small.txt"))
    ro = client(endpoint, "RO")
    seen["read-only-put"] = error_code(lambda: ro.put_object(Bucket=bucket, Key="refused/b", Body=b"x"))
    seen["read-only-get"] = error_code(lambda: ro.get_object(Bucket=bucket, Key="basic/small.txt")["Body"].read())
    scoped = client(endpoint, "SCOPED")
    seen["scoped-outside"] = error_code(lambda: scoped.put_object(Bucket=bucket, Key="refused/c", Body=b"x"))
    seen["scoped-inside"] = error_code(lambda: scoped.put_object(Bucket=bucket, Key="team-a/ok", Body=b"x"))

    # A body that is not the one signed: the hash in x-amz-content-sha256 no longer matches.
    s3 = client(endpoint)

    def tamper(request, **kwargs):
        request.body = b"tampered!"
        request.headers["Content-Length"] = str(len(request.body))

    s3.meta.events.register("before-send.s3.PutObject", tamper)
    seen["sha256-mismatch"] = error_code(lambda: s3.put_object(Bucket=bucket, Key="refused/d", Body=b"original!"))
    print(json.dumps({"step": "refusals", "seen": {k: list(v) for k, v in seen.items()}}))


def step_presigned(endpoint, bucket, key):
    # botocore 1.29 presigns with Signature Version 2 unless told; the door takes only SigV4.
    ak, sk = os.environ["DOOR_KEY_RW"].split(":", 1)
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                      region_name="us-east-1",
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3)
    data = urllib.request.urlopen(url).read()
    expect(data == pattern(1, 1000), "presigned GET bytes")
    tampered = url.replace(key.split("/")[-1], "other.txt")
    try:
        urllib.request.urlopen(tampered)
        expect(False, "a tampered presigned URL was served")
    except urllib.error.HTTPError as e:
        tampered_status = e.code
        tampered_code = e.read().decode()
    time.sleep(4)
    try:
        urllib.request.urlopen(url)
        expect(False, "an expired presigned URL was served")
    except urllib.error.HTTPError as e:
        expired_status = e.code
        expired_body = e.read().decode()
    expect(tampered_status == 403 and "SignatureDoesNotMatch" in tampered_code, f"tampered: {tampered_status} {tampered_code}")
    expect(expired_status == 403 and "AccessDenied" in expired_body, f"expired: {expired_status} {expired_body}")
    print(json.dumps({"step": "presigned", "ok": True}))


def step_put(endpoint, bucket, key, size, seed):
    s3 = client(endpoint)
    put = s3.put_object(Bucket=bucket, Key=key, Body=pattern(int(seed), int(size)))
    print(json.dumps({"step": "put", "etag": put["ETag"],
                      "state": put["ResponseMetadata"]["HTTPHeaders"].get("x-shoal-state")}))


def step_multipart(endpoint, bucket, key, size, seed, workdir):
    from boto3.s3.transfer import TransferConfig
    s3 = client(endpoint)
    size, seed = int(size), int(seed)
    src = os.path.join(workdir, "mp-src")
    with open(src, "wb") as f:
        f.write(pattern(seed, size))
    cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=6 << 20, max_concurrency=4)
    s3.upload_file(src, bucket, key, Config=cfg, ExtraArgs={"ContentType": "application/x-tar", "Metadata": {"parts": "many"}})
    head = s3.head_object(Bucket=bucket, Key=key)
    expect(head["ContentType"] == "application/x-tar" and head["Metadata"] == {"parts": "many"}, f"multipart metadata {head}")
    got = os.path.join(workdir, "mp-got")
    s3.download_file(bucket, key, got, Config=cfg)
    expect(open(got, "rb").read() == pattern(seed, size), "multipart object read back")

    # Refusals of the low-level calls, each leaving nothing behind.
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp/refused")["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="mp/refused", UploadId=up, PartNumber=1, Body=b"a" * 100)
    p2 = s3.upload_part(Bucket=bucket, Key="mp/refused", UploadId=up, PartNumber=2, Body=b"b" * 100)
    parts = s3.list_parts(Bucket=bucket, Key="mp/refused", UploadId=up)["Parts"]
    expect([p["PartNumber"] for p in parts] == [1, 2] and parts[0]["Size"] == 100, f"ListParts: {parts}")
    seen = {}
    seen["too-small"] = error_code(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="mp/refused", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]}))
    seen["wrong-etag"] = error_code(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="mp/refused", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": '"0123"'}]}))
    seen["never-staged"] = error_code(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="mp/refused", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 7, "ETag": p1["ETag"]}]}))
    seen["out-of-order"] = error_code(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="mp/refused", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": p2["ETag"]}, {"PartNumber": 1, "ETag": p1["ETag"]}]}))

    def malformed(request, **kwargs):
        request.data = b"<CompleteMultipartUpload><Part><PartNumber>1</Part>"
        if "Content-MD5" in request.headers:
            del request.headers["Content-MD5"]

    bad = client(endpoint)
    bad.meta.events.register("before-sign.s3.CompleteMultipartUpload", malformed)
    seen["malformed"] = error_code(lambda: bad.complete_multipart_upload(
        Bucket=bucket, Key="mp/refused", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}]}))
    open_uploads = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    expect(open_uploads == [up], f"one open upload: {open_uploads}")
    s3.abort_multipart_upload(Bucket=bucket, Key="mp/refused", UploadId=up)
    seen["after-abort"] = error_code(lambda: s3.upload_part(Bucket=bucket, Key="mp/refused", UploadId=up,
                                                            PartNumber=3, Body=b"c"))
    left = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    expect(left == [], f"uploads left open: {left}")
    seen["refused-object"] = error_code(lambda: s3.head_object(Bucket=bucket, Key="mp/refused"))
    print(json.dumps({"step": "multipart", "sha256": hashlib.sha256(pattern(seed, size)).hexdigest(),
                      "seen": {k: list(v) for k, v in seen.items()}}))


def step_multipart_orders(endpoint, bucket, prefix, seed):
    """Multipart uploads whose parts arrive out of order, are uploaded again, or are left out of the
    Complete: each object is exactly the parts its Complete lists. Prints each object's size."""
    s3 = client(endpoint)
    seed, MiB = int(seed), 1 << 20
    part = lambda n: pattern(seed + n, 5 * MiB + n)  # noqa: E731  (every part at least 5 MiB)
    sizes = {}

    def upload(name, sends, listed):
        key = f"{prefix}/{name}"
        up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        etags = {}
        for n, body in sends:
            etags[n] = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=body)["ETag"]
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                     MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in listed]})
        want = b"".join([dict(sends)[n] for n in listed])
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        expect(got == want, f"{name}: read back {len(got)} bytes, not the {len(want)} listed")
        sizes[name] = len(want)

    upload("reversed", [(3, part(3)), (2, part(2)), (1, part(1))], [1, 2, 3])
    upload("again", [(1, part(1)), (2, part(2)), (3, part(3)), (2, part(7))], [1, 2, 3])
    upload("skipped", [(1, part(1)), (2, part(2)), (3, part(3))], [1, 3])
    upload("fewer", [(1, part(1)), (2, part(2)), (3, part(3))], [1, 2])
    upload("no-first", [(2, part(2)), (3, part(3))], [2, 3])
    print(json.dumps({"step": "multipart-orders", "sizes": sizes}))


STEPS = {"multipart": step_multipart, "basic": step_basic, "list": step_list, "delete-many": step_delete_many,
         "refusals": step_refusals, "presigned": step_presigned, "put": step_put,
         "multipart-orders": step_multipart_orders}

if __name__ == "__main__":
    STEPS[sys.argv[1]](*sys.argv[2:])
