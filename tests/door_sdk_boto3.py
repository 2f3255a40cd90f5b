"""boto3 (Debian's python3-boto3, unmodified) steps of tests/door_sdk_test.cc, run as
/usr/bin/python3 door_sdk_boto3.py STEP ENDPOINT [ARGS...] with door_boto3.py's keys
(DOOR_KEY_RW). Each prints one JSON line.

  get BUCKET KEY                        streams the object; its sha256 and size
  put BUCKET KEY FILE                   PutObject of FILE; the x-shoal-state it was answered
  upload BUCKET KEY FILE PART_MIB       upload_file in parts of PART_MIB with Content-Type and
                                        x-amz-meta-run_id / x-amz-meta-rank
  copy BUCKET KEY SOURCE_KEY            CopyObject within BUCKET; the copy's ETag
  list BUCKET PREFIX DELIMITER          ListObjectsV2, all pages; the keys and common prefixes
"""
import hashlib
import json
import os
import sys

from boto3.s3.transfer import TransferConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from door_boto3 import client  # noqa: E402


def step_get(endpoint, bucket, key):
    body = client(endpoint).get_object(Bucket=bucket, Key=key)["Body"]
    digest, size = hashlib.sha256(), 0
    for piece in iter(lambda: body.read(1 << 20), b""):
        digest.update(piece)
        size += len(piece)
    print(json.dumps({"sha256": digest.hexdigest(), "size": size}))


def step_put(endpoint, bucket, key, path):
    with open(path, "rb") as f:
        r = client(endpoint).put_object(Bucket=bucket, Key=key, Body=f)
    print(json.dumps({"state": r["ResponseMetadata"]["HTTPHeaders"].get("x-shoal-state"), "etag": r["ETag"]}))


def step_upload(endpoint, bucket, key, path, part_mib):
    part = int(part_mib) << 20
    cfg = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)
    s3 = client(endpoint)
    s3.upload_file(path, bucket, key, Config=cfg,
                   ExtraArgs={"ContentType": "application/x-safetensors",
                              "Metadata": {"run_id": "llm-7b", "rank": "3"}})
    head = s3.head_object(Bucket=bucket, Key=key)
    print(json.dumps({"size": head["ContentLength"], "metadata": head["Metadata"],
                      "parts": -(-os.path.getsize(path) // part)}))


def step_copy(endpoint, bucket, key, source_key):
    r = client(endpoint).copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source_key})
    print(json.dumps({"etag": r["CopyObjectResult"]["ETag"]}))


def step_list(endpoint, bucket, prefix, delimiter):
    keys, prefixes = [], []
    for page in client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix,
                                                                           Delimiter=delimiter):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    print(json.dumps({"keys": keys, "prefixes": prefixes}))


STEPS = {"get": step_get, "put": step_put, "upload": step_upload, "copy": step_copy, "list": step_list}

if __name__ == "__main__":
    STEPS[sys.argv[1]](*sys.argv[2:])
