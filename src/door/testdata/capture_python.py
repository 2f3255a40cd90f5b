"""Captures requests signed by Debian's boto3/botocore and azure.storage.blob, unmodified,
through a loopback recorder: capture_python.py OUT_DIR S3_KEY S3_SECRET AZ_ACCOUNT AZ_KEY."""
import datetime
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recorder import Recorder  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from azure.storage.blob import (AccountSasPermissions, BlobSasPermissions, BlobServiceClient,  # noqa: E402
                                ContainerSasPermissions, ResourceTypes, generate_account_sas,
                                generate_blob_sas, generate_container_sas)

out, s3_key, s3_secret, account, account_key = sys.argv[1:6]
rec = Recorder(out)
endpoint = "http://127.0.0.1:%d" % rec.port


def fetch(url, method="GET", data=None):
    req = urllib.request.Request(url, method=method, data=data)
    try:
        urllib.request.urlopen(req).read()
    except Exception as e:  # the recorder's answer does not matter
        print("fetch", url, e, file=sys.stderr)


def attempt(label, fn):
    rec.label = label
    try:
        fn()
    except Exception as e:  # the SDK may dislike the recorder's answer; the request is captured
        print(label, type(e).__name__, e, file=sys.stderr)


# --- S3 with boto3 ----------------------------------------------------------------------------
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=s3_key, aws_secret_access_key=s3_secret,
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                retries={"max_attempts": 1}))
body = b"shoal front door body " * 1000
attempt("boto_put", lambda: s3.put_object(Bucket="models", Key="dir/a b+c~!(x).bin", Body=body,
                                          ContentType="application/octet-stream",
                                          Metadata={"origin": "test  two  spaces"}))
attempt("boto_put_crc32", lambda: s3.put_object(Bucket="models", Key="dir/crc.bin", Body=body,
                                                ChecksumAlgorithm="CRC32"))
attempt("boto_get", lambda: s3.get_object(Bucket="models", Key="dir/a b+c~!(x).bin",
                                          Range="bytes=0-9")["Body"].read())
attempt("boto_list", lambda: s3.list_objects_v2(Bucket="models", Prefix="dir/", Delimiter="/",
                                                MaxKeys=100))
rec.label = "boto_presigned_get"
fetch(s3.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": "dir/p q.bin"},
                                ExpiresIn=3600))
rec.label = "boto_presigned_put"
fetch(s3.generate_presigned_url("put_object", Params={"Bucket": "models", "Key": "dir/up.bin"},
                                ExpiresIn=600), method="PUT", data=b"presigned body")

# --- Azure with azure.storage.blob --------------------------------------------------------------
conn = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s/%s;"
        % (account, account_key, endpoint, account))
svc = BlobServiceClient.from_connection_string(conn)
blob = svc.get_blob_client("data", "dir/a b+c.bin")
attempt("azpy_put", lambda: blob.upload_blob(b"azure body " * 100, overwrite=True,
                                              metadata={"origin": "test"}))
attempt("azpy_get", lambda: blob.download_blob(offset=0, length=10).readall())
attempt("azpy_list", lambda: list(svc.get_container_client("data").list_blobs(
    name_starts_with="dir/")))

now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
start, expiry = now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=1)
blob_url = "%s/%s/data/dir/a%%20b%%2Bc.bin" % (endpoint, account)
sas = generate_blob_sas(account, "data", "dir/a b+c.bin", account_key=account_key,
                        permission=BlobSasPermissions(read=True), start=start, expiry=expiry,
                        ip="127.0.0.1", protocol="https,http")
rec.label = "azpy_blob_sas"
fetch(blob_url + "?" + sas)
sas = generate_container_sas(account, "data", account_key=account_key,
                             permission=ContainerSasPermissions(read=True, list=True),
                             expiry=expiry, ip="127.0.0.0-127.0.0.255", protocol="https")
rec.label = "azpy_container_sas"
fetch(blob_url + "?" + sas)
sas = generate_account_sas(account, account_key, resource_types=ResourceTypes(object=True),
                           permission=AccountSasPermissions(read=True, write=True),
                           expiry=expiry, start=start)
rec.label = "azpy_account_sas"
fetch(blob_url + "?" + sas, method="PUT", data=b"via account sas")
rec.close()
