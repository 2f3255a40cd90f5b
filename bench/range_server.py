"""A bare file server for bench/door_bench.sh: the least any server can do for an SDK's download
or upload, to tell the SDK's own cost from the door's. Serves one file at every path, GET and
HEAD, whole or one range (`Range` or Azure's `x-ms-range`), with the headers boto3 and the Azure
SDK read (Content-Range, ETag, Last-Modified, x-ms-blob-type); the bytes go out with
sendfile(2). Takes uploads as a sink: S3's PutObject and multipart calls (CreateMultipartUpload,
UploadPart, CompleteMultipartUpload) and Azure's Put Blob, Put Block and Put Block List, their
bodies read and dropped, answered as the SDKs expect. No authentication: the SDKs' signatures
are ignored.

  python3 bench/range_server.py PORT-FILE FILE     (binds 127.0.0.1 on a free port, written to PORT-FILE)
"""
import email.utils
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = sys.argv[2]
SIZE = os.path.getsize(PATH)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.serve(False)

    def do_GET(self):
        self.serve(True)

    def do_PUT(self):
        self.sink()

    def do_POST(self):
        self.sink()

    def sink(self):
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            got = self.rfile.read(min(left, 1 << 20))
            if not got:
                break
            left -= len(got)
        query = self.path.partition("?")[2]
        body = b""
        if self.command == "POST" and "uploads" in query.split("&"):
            body = b"<InitiateMultipartUploadResult><UploadId>sink</UploadId></InitiateMultipartUploadResult>"
        elif self.command == "POST":
            body = b"<CompleteMultipartUploadResult><ETag>&quot;sink&quot;</ETag></CompleteMultipartUploadResult>"
        azure = "x-ms-version" in self.headers
        self.send_response(201 if azure else 200)
        self.send_header("ETag", '"0x8D0000000000000"')
        self.send_header("Last-Modified", email.utils.formatdate(0, usegmt=True))
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/xml")
        self.end_headers()
        self.wfile.write(body)

    def serve(self, body):
        spec = self.headers.get("x-ms-range") or self.headers.get("Range")
        offset, length, code = 0, SIZE, 200
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", spec or "")
        if m:
            offset = int(m.group(1))
            last = min(int(m.group(2)) if m.group(2) else SIZE - 1, SIZE - 1)
            length, code = last - offset + 1, 206
        self.send_response(code)
        self.send_header("Content-Length", str(length))
        self.send_header("ETag", '"0x8D0000000000000"')
        self.send_header("Last-Modified", email.utils.formatdate(0, usegmt=True))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("x-ms-blob-type", "BlockBlob")
        if code == 206:
            self.send_header("Content-Range", f"bytes {offset}-{offset + length - 1}/{SIZE}")
        self.end_headers()
        if not body:
            return
        self.wfile.flush()
        with open(PATH, "rb") as f:
            while length > 0:
                sent = os.sendfile(self.connection.fileno(), f.fileno(), offset, length)
                offset += sent
                length -= sent


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
