"""azure.storage.blob (Debian's python3-azure, unmodified) against a shoald's Azure Blob front door.

Run by tests/door_azure_test.cc as: /usr/bin/python3 door_azure.py STEP ENDPOINT CONTAINER [ARGS...]
ENDPOINT is the blob endpoint, http://NODE:PORT/ACCOUNT; the account and its key come from the
environment (DOOR_AZURE_ACCOUNT, DOOR_AZURE_KEY) as the test wrote them into the node's
--credentials file. Each step asserts what it expects and prints one JSON line of what it saw;
exit 1 with the reason when an expectation fails.
"""
import base64
import datetime
import hashlib
import json
import os
import sys

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import (BlobBlock, BlobServiceClient, ContainerSasPermissions, ContentSettings,
                                generate_container_sas)
from azure.storage.blob._generated.models import BlockLookupList
from door_boto3 import expect, pattern  # the S3 door's script: the same bytes, the same failures

MiB = 1024 * 1024


def conn_str(endpoint, key=None):
    account = os.environ["DOOR_AZURE_ACCOUNT"]
    key = key or os.environ["DOOR_AZURE_KEY"]
    return (f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
            f"BlobEndpoint={endpoint};")


def service(endpoint, key=None, **kw):
    return BlobServiceClient.from_connection_string(conn_str(endpoint, key), retry_total=0, **kw)


def error_of(fn):
    """(x-ms-error-code, HTTP status) of what fn raised, or (None, 200)."""
    try:
        fn()
    except HttpResponseError as e:
        # (The SDK's generated layer, commit_raw's, raises without reading x-ms-error-code.)
        return getattr(e, "error_code", None) or e.response.headers.get("x-ms-error-code"), e.status_code
    return None, 200


def step_basic(endpoint, container):
    svc = service(endpoint)
    names = [c.name for c in svc.list_containers()]
    expect(container in names, f"List Containers names {container}: {names}")
    cc = svc.get_container_client(container)
    cc.get_container_properties()
    seen = {}
    seen["create-configured"] = error_of(lambda: svc.create_container(container))
    seen["create-unconfigured"] = error_of(lambda: svc.create_container("notconfigured"))
    seen["missing-container"] = error_of(lambda: svc.get_container_client("notconfigured").get_container_properties())
    sizes = {"empty": 0, "small.txt": 1000, "dir/large.bin": 20 * MiB + 7}
    for i, (name, size) in enumerate(sizes.items()):
        body = pattern(i, size)
        bc = cc.get_blob_client("basic/" + name)
        up = bc.upload_blob(body, overwrite=True)
        data = bc.download_blob().readall()
        expect(data == body, f"{name}: read back {len(data)} bytes, wrote {size}")
        props = bc.get_blob_properties()
        expect(props.size == size, f"{name}: properties say {props.size}")
        # (The ETag is the local version's until the upload, then the store's: docs/front-door.md.)
        expect(props.etag and up["etag"], f"{name}: ETags {props.etag} {up['etag']}")
        expect(props.blob_type == "BlockBlob", f"{name}: blob type {props.blob_type}")
    body = pattern(2, 20 * MiB + 7)
    bc = cc.get_blob_client("basic/dir/large.bin")
    expect(bc.download_blob(offset=100, length=100).readall() == body[100:200], "range 100-199")
    expect(bc.download_blob(offset=8 * MiB - 10, length=20).readall() == body[8 * MiB - 10:8 * MiB + 10],
           "range across chunks")
    expect(bc.download_blob(offset=16 * MiB).readall() == body[16 * MiB:], "open range to the end")
    seen["range-past-end"] = error_of(lambda: bc.download_blob(offset=len(body) + 10, length=5).readall())
    # Content settings and metadata, kept as the object's.
    meta = cc.get_blob_client("basic/meta.pt")
    meta.upload_blob(b"weights" * 100, overwrite=True, metadata={"rank": "3", "run_id": "llm-7b"},
                     content_settings=ContentSettings(content_type="application/x-pytorch", cache_control="no-cache"))
    p = meta.get_blob_properties()
    expect(p.metadata == {"rank": "3", "run_id": "llm-7b"}, f"metadata {p.metadata}")
    expect(p.content_settings.content_type == "application/x-pytorch", f"content type {p.content_settings.content_type}")
    expect(p.content_settings.cache_control == "no-cache", f"cache control {p.content_settings.cache_control}")
    # Set Blob Metadata (step set-metadata) rewrites this one's metadata, once it is uploaded.
    cc.get_blob_client("basic/meta2.pt").upload_blob(pattern(7, 3 * MiB), overwrite=True, metadata={"stage": "one"})
    seen["bad-metadata"] = error_of(lambda: cc.get_blob_client("basic/badmeta").upload_blob(
        b"x", overwrite=True, metadata={"my-key": "v"}))
    seen["missing-blob"] = error_of(lambda: cc.get_blob_client("basic/none").get_blob_properties())
    gone = cc.get_blob_client("basic/gone")
    gone.upload_blob(b"soon gone", overwrite=True)
    gone.delete_blob()
    seen["after-delete"] = error_of(lambda: gone.download_blob().readall())
    seen["delete-again"] = error_of(lambda: gone.delete_blob())
    print(json.dumps({"seen": seen}))


def commit_raw(bc, committed=(), uncommitted=(), latest=()):
    """Put Block List with Committed and Uncommitted entries: the SDK's commit_block_list sends every
    block as Latest (it compares BlockState's value with lower-case names), so this goes through the
    SDK's generated layer, which writes the three lists as Azure defines them."""
    enc = lambda ids: [base64.b64encode(i.encode()).decode() for i in ids]  # noqa: E731 (the SDK's ids are base64 on the wire)
    bc._client.block_blob.commit_block_list(
        BlockLookupList(committed=enc(committed), uncommitted=enc(uncommitted), latest=enc(latest)))


def step_set_metadata(endpoint, container):
    """Set Blob Metadata rewrites the metadata, not the bytes (run once basic/meta2.pt is uploaded:
    two writes of one blob pending at once may reach the store in either order)."""
    bc = service(endpoint).get_blob_client(container, "basic/meta2.pt")
    expect(bc.get_blob_properties().metadata == {"stage": "one"}, "metadata before")
    bc.set_blob_metadata({"stage": "two", "owner": "team_a"})
    p = bc.get_blob_properties()
    expect(p.metadata == {"stage": "two", "owner": "team_a"}, f"metadata after Set Blob Metadata: {p.metadata}")
    expect(bc.download_blob().readall() == pattern(7, 3 * MiB), "bytes after Set Blob Metadata")
    # Set Blob Properties: the content headers given, the others cleared, metadata kept.
    small = service(endpoint).get_blob_client(container, "basic/meta.pt")
    small.set_http_headers(ContentSettings(content_type="text/plain", content_language="en"))
    q = small.get_blob_properties()
    expect(q.content_settings.content_type == "text/plain" and q.content_settings.content_language == "en" and
           q.content_settings.cache_control is None, f"content settings after Set Blob Properties: {q.content_settings}")
    expect(q.metadata == {"rank": "3", "run_id": "llm-7b"}, f"metadata after Set Blob Properties: {q.metadata}")
    print(json.dumps({"metadata": p.metadata}))


def step_blocks(endpoint, container, name, size, seed):
    """A blob staged in 4 MiB blocks by the SDK's own uploader, then a block list of committed and
    new blocks, and one naming a block never staged."""
    size, seed = int(size), int(seed)
    svc = service(endpoint, max_single_put_size=8 * MiB, max_block_size=4 * MiB)
    bc = svc.get_container_client(container).get_blob_client(name)
    body = pattern(seed, size)
    bc.upload_blob(body, overwrite=True, max_concurrency=4, metadata={"parts": "many"},
                   content_settings=ContentSettings(content_type="application/x-tar"))
    committed, uncommitted = bc.get_block_list("all")
    blocks = len(committed)
    expect(len(committed) == (size + 4 * MiB - 1) // (4 * MiB) and not uncommitted,
           f"{len(committed)} blocks committed, {len(uncommitted)} left uncommitted")
    expect(sum(b.size for b in committed) == size, "committed blocks add up to the blob")
    data = bc.download_blob(max_concurrency=2).readall()
    expect(data == body, f"read back {len(data)} bytes of {size}")
    props = bc.get_blob_properties()
    expect(props.metadata == {"parts": "many"} and props.content_settings.content_type == "application/x-tar",
           f"block list's metadata {props.metadata} {props.content_settings.content_type}")
    # Block lists on a blob of their own (the one above is compared with the backend's copy: one
    # write of it only).
    seen = {}
    ec = svc.get_container_client(container).get_blob_client(name + ".edit")
    ec.upload_blob(body[:12 * MiB], overwrite=True, max_concurrency=4)
    committed, _ = ec.get_block_list("all")
    expect(len(committed) == 3, f"{len(committed)} blocks")
    state = lambda: (ec.get_blob_properties().size, [b.id for b in ec.get_block_list("all")[0]])  # noqa: E731
    before = state()
    # Never staged: refused, and the blob is unchanged.
    seen["never-staged"] = error_of(lambda: ec.commit_block_list([BlobBlock("bmV2ZXItc3RhZ2Vk")]))
    expect(state() == before, "a refused block list changed the blob")
    # A committed block kept, a new one added: the blob is block 0 + the new bytes.
    first = committed[0]
    ec.stage_block("dGFpbC1ibG9jay0wMDAx", b"tail bytes")
    _, staged = ec.get_block_list("uncommitted")
    expect([b.id for b in staged] == ["dGFpbC1ibG9jay0wMDAx"] and staged[0].size == 10, f"staged {staged}")
    seen["uncommitted-as-committed"] = error_of(lambda: commit_raw(ec, committed=[first.id, "dGFpbC1ibG9jay0wMDAx"]))
    seen["committed-as-uncommitted"] = error_of(lambda: commit_raw(ec, uncommitted=[first.id, "dGFpbC1ibG9jay0wMDAx"]))
    expect(state() == before, "a refused block list changed the blob")
    commit_raw(ec, committed=[first.id], uncommitted=["dGFpbC1ibG9jay0wMDAx"])
    edited = ec.download_blob().readall()
    expect(edited == body[:first.size] + b"tail bytes", f"edited blob is {len(edited)} bytes")
    committed2, uncommitted2 = ec.get_block_list("all")
    expect([b.id for b in committed2] == [first.id, "dGFpbC1ibG9jay0wMDAx"] and not uncommitted2,
           f"after the edit: {committed2} {uncommitted2}")
    print(json.dumps({"seen": seen, "blocks": blocks, "sha256": hashlib.sha256(body).hexdigest()}))


def step_list(endpoint, container, prefix, count, per_page):
    count, per_page = int(count), int(per_page)
    cc = service(endpoint).get_container_client(container)
    pages = cc.list_blobs(name_starts_with=prefix, results_per_page=per_page).by_page()
    n, npages, names = 0, 0, []
    for page in pages:
        items = list(page)
        npages += 1
        n += len(items)
        names += [b.name for b in items]
    expect(names == sorted(names), "names in order")
    expect(len(set(names)) == n, "no name twice")
    tops = [b.name for b in cc.walk_blobs(name_starts_with=prefix, delimiter="/")]
    # Hierarchy with paging: the prefixes one level down, and the blobs under one of them.
    sub = cc.list_blobs(name_starts_with=prefix + "d0/", results_per_page=per_page).by_page()
    sub_count, sub_pages = 0, 0
    for page in sub:
        sub_count += len(list(page))
        sub_pages += 1
    with_meta = list(cc.list_blobs(name_starts_with="basic/meta", include=["metadata"]))
    metas = {b.name: b.metadata for b in with_meta}
    print(json.dumps({"blobs": n, "pages": npages, "prefixes": tops, "sub_blobs": sub_count, "sub_pages": sub_pages,
                      "metadata": metas}))


def step_refusals(endpoint, container):
    seen = {}
    bad = service(endpoint, key="d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmc=")
    seen["wrong-key"] = error_of(lambda: bad.get_blob_client(container, "refused/a").upload_blob(b"no", overwrite=True))
    seen["wrong-key-read"] = error_of(lambda: bad.get_blob_client(container, "basic/small.txt").download_blob().readall())
    sas = generate_container_sas(os.environ["DOOR_AZURE_ACCOUNT"], container, account_key=os.environ["DOOR_AZURE_KEY"],
                                 permission=ContainerSasPermissions(read=True, list=True),
                                 expiry=datetime.datetime.utcnow() + datetime.timedelta(hours=1))
    ro = BlobServiceClient(account_url=endpoint, credential=sas, retry_total=0)
    seen["read-only-sas-write"] = error_of(lambda: ro.get_blob_client(container, "refused/b").upload_blob(b"no", overwrite=True))
    seen["read-only-sas-block"] = error_of(lambda: ro.get_blob_client(container, "refused/c").stage_block("YmxvY2s=", b"no"))
    seen["read-only-sas-delete"] = error_of(lambda: ro.get_blob_client(container, "basic/small.txt").delete_blob())
    data = ro.get_blob_client(container, "basic/small.txt").download_blob().readall()
    expect(data == pattern(1, 1000), "the read-only SAS reads")
    seen["read-only-sas-list"] = (None, 200) if list(ro.get_container_client(container).list_blobs(
        name_starts_with="basic/")) else ("empty", 0)
    print(json.dumps({"seen": seen}))


def step_put(endpoint, container, name, size, seed):
    size, seed = int(size), int(seed)
    svc = service(endpoint, max_single_put_size=8 * MiB, max_block_size=4 * MiB)
    bc = svc.get_blob_client(container, name)
    body = pattern(seed, size)
    bc.upload_blob(body, overwrite=True, max_concurrency=4, metadata={"origin": "azure_sdk"})
    expect(bc.download_blob().readall() == body, "read back")
    print(json.dumps({"sha256": hashlib.sha256(body).hexdigest()}))


def step_open(endpoint, container):
    """An open door: any account name and key, or none at all."""
    svc = service(endpoint, key="YW55LWtleS13aWxsLWRv")
    bc = svc.get_blob_client(container, "open/a.bin")
    bc.upload_blob(pattern(3, 5000), overwrite=True)
    anonymous = BlobServiceClient(account_url=endpoint, retry_total=0).get_blob_client(container, "open/a.bin")
    expect(anonymous.download_blob().readall() == pattern(3, 5000), "an unsigned read of the blob")
    names = [b.name for b in svc.get_container_client(container).list_blobs(name_starts_with="open/")]
    print(json.dumps({"names": names}))


def step_overwrite(endpoint, container):
    """20 blobs of 3 MiB, each overwritten with 1,000 + i bytes as soon as it is acknowledged."""
    svc = service(endpoint)
    for i in range(20):
        bc = svc.get_blob_client(container, f"overwrite/x{i}")
        bc.upload_blob(pattern(i, 3 * MiB), overwrite=True)
        bc.upload_blob(pattern(100 + i, 1000 + i), overwrite=True)
        expect(bc.download_blob().readall() == pattern(100 + i, 1000 + i), f"x{i} reads as the second write")
    print(json.dumps({}))


if __name__ == "__main__":
    step, endpoint, container, *rest = sys.argv[1:]
    globals()["step_" + step.replace("-", "_")](endpoint, container, *rest)

