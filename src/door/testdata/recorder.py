"""A loopback HTTP server that records each request it receives (method, path, query, headers
in order, raw body) as LABEL_N.json in a directory, and answers with a plausible success, so an
unmodified SDK sends what it would send to S3 or Azure. Used by capture_python.py."""
import base64
import http.server
import json
import os
import threading


class Recorder:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.label = "unlabelled"
        self.counts = {}
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length", "0"))
                return self.rfile.read(n) if n else b""

            def _handle(self):
                body = self._body()
                path, _, query = self.path.partition("?")
                recorder.save({
                    "method": self.command,
                    "path": path,
                    "query": query,
                    "headers": [[k, v] for k, v in self.headers.items()],
                    "body_b64": base64.b64encode(body).decode(),
                })
                payload = b""
                status = 200
                if self.command == "GET" and "list-type=2" in query:
                    payload = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                               b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>models'
                               b'</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>'
                               b'</ListBucketResult>')
                elif self.command == "GET" and "comp=list" in query:
                    payload = (b'<?xml version="1.0" encoding="utf-8"?><EnumerationResults '
                               b'ContainerName="data"><Blobs/><NextMarker/></EnumerationResults>')
                elif self.command == "GET":
                    payload = b"0123456789"
                elif self.command == "PUT" and "x-ms-version" in {k.lower() for k in self.headers}:
                    status = 201
                self.send_response(status)
                self.send_header("ETag", '"0x8D9"')
                self.send_header("Last-Modified", "Thu, 03 Dec 2026 16:00:00 GMT")
                self.send_header("Content-Length", str(len(payload)))
                if self.command == "GET" and payload == b"0123456789":
                    self.send_header("Content-Range", "bytes 0-9/10")
                    self.send_header("x-ms-blob-type", "BlockBlob")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def save(self, record):
        n = self.counts.get(self.label, 0)
        self.counts[self.label] = n + 1
        with open(os.path.join(self.out_dir, "%s_%d.json" % (self.label, n)), "w") as f:
            json.dump(record, f)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
