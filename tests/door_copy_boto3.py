"""boto3 (Debian's python3-boto3, unmodified) copying objects through a shoald's S3 front door,
and asking for durable acknowledgements (x-shoal-wait: durable).

Run by tests/door_copy_test.cc as: /usr/bin/python3 door_copy_boto3.py STEP ENDPOINT [ARGS...]
Each step asserts what it expects and prints one JSON line of what it saw; exit 1 with the
reason when an expectation fails. The helpers (keys from DOOR_KEY_*, the byte pattern) are
door_boto3.py's.
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from door_boto3 import client, error_code, expect, pattern, same_write  # noqa: E402

MIB = 1024 * 1024
SOURCE_KEY = "src/caf\u00e9 b+c.bin"  # URL-encoded in x-amz-copy-source


def state_of(response):
    return response["ResponseMetadata"]["HTTPHeaders"].get("x-shoal-state")


def durable_client(endpoint):
    """A client whose writes ask to be answered once durable in the backend."""
    s3 = client(endpoint)

    def ask(request, **kwargs):
        request.headers["x-shoal-wait"] = "durable"
    for op in ("PutObject", "CopyObject", "CompleteMultipartUpload"):
        s3.meta.events.register("before-sign.s3." + op, ask)
    return s3


def step_copy(endpoint, az, s3b):
    s3 = client(endpoint)
    body = pattern(21, 12 * MIB + 5)  # two of the node's 8 MiB chunks
    s3.put_object(Bucket=az, Key=SOURCE_KEY, Body=body, ContentType="application/x-test",
                  Metadata={"origin": "az", "step": "one"})
    src = {"Bucket": az, "Key": SOURCE_KEY}
    seen = {}

    # COPY (the default): the bytes and the source's metadata.
    r = s3.copy_object(Bucket=az, Key="dst/copied.bin", CopySource=src)
    expect(r["CopyObjectResult"]["ETag"].startswith('"'), f"CopyObjectResult has an ETag: {r}")
    expect(state_of(r) == "local", f"a copy is acknowledged local: {state_of(r)}")
    got = s3.get_object(Bucket=az, Key="dst/copied.bin", IfMatch=r["CopyObjectResult"]["ETag"])
    expect(got["Body"].read() == body, "the copy's bytes are the source's")
    expect(got["ContentType"] == "application/x-test", f"COPY keeps Content-Type: {got['ContentType']}")
    expect(got["Metadata"] == {"origin": "az", "step": "one"}, f"COPY keeps the metadata: {got['Metadata']}")
    # The copy's ETag, or the store's once its upload landed (If-Match took the copy's above).
    expect(same_write(got["ETag"], r["CopyObjectResult"]["ETag"]),
           f"GET's ETag {got['ETag']} is the copy's {r['CopyObjectResult']['ETag']} or the store's")

    # REPLACE: the request's metadata.
    s3.copy_object(Bucket=az, Key="dst/replaced.bin", CopySource=src, MetadataDirective="REPLACE",
                   ContentType="text/plain", Metadata={"fresh": "yes"})
    head = s3.head_object(Bucket=az, Key="dst/replaced.bin")
    expect(head["Metadata"] == {"fresh": "yes"} and head["ContentType"] == "text/plain",
           f"REPLACE takes the request's metadata: {head['Metadata']} {head['ContentType']}")
    # An object copied onto itself with new metadata.
    s3.copy_object(Bucket=az, Key="dst/replaced.bin", CopySource={"Bucket": az, "Key": "dst/replaced.bin"},
                   MetadataDirective="REPLACE", Metadata={"fresh": "again"})
    got = s3.get_object(Bucket=az, Key="dst/replaced.bin")
    expect(got["Body"].read() == body and got["Metadata"] == {"fresh": "again"}, "copied onto itself with REPLACE")

    # Across backends: Azure-fronting -> S3-fronting, and back.
    s3.copy_object(Bucket=s3b, Key="from-az.bin", CopySource=src)
    expect(s3.get_object(Bucket=s3b, Key="from-az.bin")["Body"].read() == body, "Azure -> S3 copy")
    other = pattern(22, 5 * MIB + 17)
    s3.put_object(Bucket=s3b, Key="native.bin", Body=other, Metadata={"side": "s3"})
    s3.copy_object(Bucket=az, Key="dst/from-s3.bin", CopySource={"Bucket": s3b, "Key": "native.bin"})
    got = s3.get_object(Bucket=az, Key="dst/from-s3.bin")
    expect(got["Body"].read() == other and got["Metadata"] == {"side": "s3"}, "S3 -> Azure copy")

    # Conditions.
    etag = s3.head_object(Bucket=az, Key=SOURCE_KEY)["ETag"]
    seen["if-match-wrong"] = error_code(lambda: s3.copy_object(Bucket=az, Key="refused/a", CopySource=src,
                                                               CopySourceIfMatch='"nope"'))
    seen["if-none-match-equal"] = error_code(lambda: s3.copy_object(Bucket=az, Key="refused/b", CopySource=src,
                                                                    CopySourceIfNoneMatch=etag))
    seen["if-match-right"] = error_code(lambda: s3.copy_object(Bucket=az, Key="dst/if-match.bin", CopySource=src,
                                                               CopySourceIfMatch=etag))
    seen["if-none-match-other"] = error_code(lambda: s3.copy_object(Bucket=az, Key="dst/if-none.bin", CopySource=src,
                                                                    CopySourceIfNoneMatch='"other"'))
    # Refusals.
    seen["version-id"] = error_code(lambda: s3.copy_object(Bucket=az, Key="refused/c",
                                                           CopySource={"Bucket": az, "Key": SOURCE_KEY, "VersionId": "v1"}))
    seen["onto-itself"] = error_code(lambda: s3.copy_object(Bucket=az, Key=SOURCE_KEY, CopySource=src))
    seen["no-such-key"] = error_code(lambda: s3.copy_object(Bucket=az, Key="refused/d",
                                                            CopySource={"Bucket": az, "Key": "src/missing"}))
    seen["no-such-bucket"] = error_code(lambda: s3.copy_object(Bucket=az, Key="refused/e",
                                                               CopySource={"Bucket": "not-configured", "Key": "x"}))
    seen["bad-directive"] = error_code(lambda: s3.copy_object(Bucket=az, Key="refused/f", CopySource=src,
                                                              MetadataDirective="MERGE"))
    ro = client(endpoint, "RO")
    seen["read-only-key"] = error_code(lambda: ro.copy_object(Bucket=az, Key="refused/g", CopySource=src))
    scoped = client(endpoint, "SCOPED")  # read-write in team-a/ only
    seen["scoped-source-outside"] = error_code(lambda: scoped.copy_object(Bucket=az, Key="team-a/refused",
                                                                          CopySource=src))
    scoped.put_object(Bucket=az, Key="team-a/mine", Body=b"mine")
    seen["scoped-inside"] = error_code(lambda: scoped.copy_object(Bucket=az, Key="team-a/copy",
                                                                  CopySource={"Bucket": az, "Key": "team-a/mine"}))

    # UploadPartCopy: two ranges of the Azure source and the whole S3 object, joined.
    up = s3.create_multipart_upload(Bucket=az, Key="dst/joined.bin", Metadata={"joined": "3"})["UploadId"]
    parts = []
    for n, (cs, rng) in enumerate([(src, f"bytes=0-{6 * MIB - 1}"), (src, f"bytes={6 * MIB}-{len(body) - 1}"),
                                   ({"Bucket": s3b, "Key": "native.bin"}, None)], start=1):
        kw = {"CopySourceRange": rng} if rng else {}
        r = s3.upload_part_copy(Bucket=az, Key="dst/joined.bin", UploadId=up, PartNumber=n, CopySource=cs, **kw)
        parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})
    seen["bad-range"] = error_code(lambda: s3.upload_part_copy(Bucket=az, Key="dst/joined.bin", UploadId=up,
                                                               PartNumber=4, CopySource=src,
                                                               CopySourceRange=f"bytes=0-{len(body)}"))
    listed = s3.list_parts(Bucket=az, Key="dst/joined.bin", UploadId=up)["Parts"]
    expect([p["Size"] for p in listed] == [6 * MIB, len(body) - 6 * MIB, len(other)], f"parts staged: {listed}")
    s3.complete_multipart_upload(Bucket=az, Key="dst/joined.bin", UploadId=up, MultipartUpload={"Parts": parts})
    joined = body + other
    got = s3.get_object(Bucket=az, Key="dst/joined.bin")
    expect(got["Body"].read() == joined, "the parts copied are the object")
    print(json.dumps({"seen": seen, "sha256": hashlib.sha256(body).hexdigest(),
                      "other_sha256": hashlib.sha256(other).hexdigest(),
                      "joined_sha256": hashlib.sha256(joined).hexdigest()}))


def step_durable(endpoint, bucket):
    """Writes answered once durable: PutObject, CopyObject, CompleteMultipartUpload."""
    s3 = durable_client(endpoint)
    body = pattern(31, 6 * MIB + 1)
    states = {}
    r = s3.put_object(Bucket=bucket, Key="durable/put.bin", Body=body)
    states["put"] = state_of(r)
    r = s3.copy_object(Bucket=bucket, Key="durable/copy.bin", CopySource={"Bucket": bucket, "Key": "durable/put.bin"})
    states["copy"] = state_of(r)
    up = s3.create_multipart_upload(Bucket=bucket, Key="durable/mp.bin")["UploadId"]
    parts = []
    for n, piece in enumerate([body[:5 * MIB], body[5 * MIB:]], start=1):
        p = s3.upload_part(Bucket=bucket, Key="durable/mp.bin", UploadId=up, PartNumber=n, Body=piece)
        parts.append({"PartNumber": n, "ETag": p["ETag"]})
    r = s3.complete_multipart_upload(Bucket=bucket, Key="durable/mp.bin", UploadId=up, MultipartUpload={"Parts": parts})
    states["complete"] = state_of(r)
    # Without the header: acknowledged as soon as the write is on the node's disk.
    states["put-plain"] = state_of(client(endpoint).put_object(Bucket=bucket, Key="durable/plain.bin", Body=b"x"))
    # A value the door does not know.
    bad = client(endpoint)
    bad.meta.events.register("before-sign.s3.PutObject",
                             lambda request, **kw: request.headers.__setitem__("x-shoal-wait", "forever"))
    states["bad-value"] = error_code(lambda: bad.put_object(Bucket=bucket, Key="durable/refused", Body=b"x"))
    print(json.dumps({"states": states, "sha256": hashlib.sha256(body).hexdigest()}))


STEPS = {"copy": step_copy, "durable": step_durable}

if __name__ == "__main__":
    STEPS[sys.argv[1]](*sys.argv[2:])
