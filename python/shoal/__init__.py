"""Shoal from Python: objects in Azure Blob, S3 or a local directory, read through a Shoal cache
node and written back through it.

    import shoal
    client = shoal.Client(cache="127.0.0.1:7070")   # or unix:/run/shoald.sock; None: no node
    with client.open("az://ckpt/run1/model.pt", "wb") as f:
        torch.save(model.state_dict(), f)           # on the node's disk once the file is closed
    client.flush("az://ckpt/run1/")                 # waits until it is in the object store
    with client.open("az://ckpt/run1/model.pt", "rb") as f:
        state = torch.load(f)

With a cache node, everything (listing too) goes through it and this host needs no store
credentials. Without one, they come from the environment as for the `shoal` command line
(AZURE_STORAGE_CONNECTION_STRING, AWS_*, ...).
Every call that moves bytes releases the GIL.

shoal.torch (imported on first use, and only then needing torch) has PyTorch datasets over
the objects under a prefix: ObjectDataset and IterableObjectDataset.
"""

import io
import json
import os

from . import _shoal

__all__ = ["Client", "File", "Entry", "latest_checkpoint"]

Entry = _shoal.Entry


def __getattr__(name):
    # `shoal.torch` on first use: `import shoal` itself never imports torch.
    if name == "torch":
        import importlib
        return importlib.import_module(".torch", __name__)
    raise AttributeError("module 'shoal' has no attribute %r" % name)


class File(io.RawIOBase):
    """An object open for reading ("rb": read, readinto, seek, tell) or writing ("wb": a new
    object; "ab": one that starts with the object's current bytes, every write at its end).
    A file being written may seek back and rewrite, and be truncated, as zipfile, np.savez and
    tarfile do: bytes are kept in a spool file ($TMPDIR) and streamed to the node while they
    come in order. A written object appears whole when close() returns, never in part."""

    def __init__(self, url, mode, native):
        super().__init__()
        self.name = url
        self.mode = mode
        self._native = native
        self._pos = 0

    # --- what it can do ---
    def readable(self):
        return self.mode == "rb"

    def writable(self):
        return self.mode in ("wb", "ab")

    def seekable(self):
        return True

    def _check_open(self):
        if self.closed:
            raise ValueError("I/O operation on closed file " + self.name)

    # --- reading ---
    @property
    def size(self):
        return self._native.size

    def read(self, n=-1):
        self._check_open()
        if not self.readable():
            raise io.UnsupportedOperation("not readable (opened 'wb')")
        data = self._native.read_at(self._pos, -1 if n is None or n < 0 else n)
        self._pos += len(data)
        return data

    def readall(self):
        return self.read(-1)

    def readinto(self, buffer):
        self._check_open()
        if not self.readable():
            raise io.UnsupportedOperation("not readable (opened 'wb')")
        n = self._native.readinto_at(self._pos, memoryview(buffer).cast("B"))
        self._pos += n
        return n

    def seek(self, offset, whence=io.SEEK_SET):
        self._check_open()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._native.size + offset
        else:
            raise ValueError("whence must be 0, 1 or 2")
        if pos < 0:
            raise ValueError("negative seek position %d" % pos)
        self._pos = pos
        return pos

    def tell(self):
        self._check_open()
        return self._pos

    # --- writing ---
    def write(self, data):
        self._check_open()
        if not self.writable():
            raise io.UnsupportedOperation("not writable (opened 'rb')")
        if self.mode == "ab":
            self._pos = self._native.size  # appends go to the end wherever the position is
        n = self._native.write_at(self._pos, data)
        self._pos += n
        return n

    def truncate(self, size=None):
        """Cuts (or extends with zeros) the object being written to size (default: the position)."""
        self._check_open()
        if not self.writable():
            raise io.UnsupportedOperation("not writable (opened 'rb')")
        size = self._pos if size is None else size
        if size < 0:
            raise ValueError("negative size %d" % size)
        self._native.truncate(size)
        return size

    def flush(self):
        # Bytes written are handed to the upload as they come; close() completes the object.
        self._check_open()

    def close(self):
        if self.closed:
            return
        try:
            if self.writable():
                self._native.close()
        finally:
            super().close()

    def abort(self):
        """Abandons an object being written: nothing appears at its URL."""
        if not self.closed and self.writable():
            self._native.abort()
        super().close()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self.writable() and not self.closed:
            self.abort()  # a failed torch.save leaves no half-written object
            return False
        self.close()
        return False

    def __del__(self):
        # An unclosed writer is abandoned (nothing appears), never completed half-written.
        if not self.closed and self.writable():
            try:
                self._native.abort()
            except Exception:
                pass
        try:
            super().close()
        except Exception:
            pass


class Client:
    """Objects under az://, s3:// and file:// URLs.

    cache: HOST:PORT or unix:PATH of a shoald (default: $SHOAL_CACHE; "" or None for no node:
    reads and writes go straight to the object store). token_file: the node's shared secret
    (default: $SHOAL_TOKEN_FILE).
    """

    def __init__(self, cache=None, token_file=None):
        self._native = _shoal.Client(cache or "", token_file or "")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return False

    @property
    def cache(self):
        return self._native.cache

    def open(self, url, mode="rb"):
        """A file object: "rb" reads the object's current version, "wb" writes a new one, "ab"
        a new one that starts with the current bytes (read at open; none if it does not exist)."""
        if mode == "rb" or mode == "r":
            return File(url, "rb", self._native.open_read(url))
        if mode == "wb" or mode == "w":
            return File(url, "wb", self._native.open_write(url, False))
        if mode == "ab" or mode == "a":
            f = File(url, "ab", self._native.open_write(url, True))
            f._pos = f.size
            return f
        raise ValueError("mode must be 'rb', 'wb' or 'ab' (objects are read, or written whole)")

    def exists(self, url):
        """Whether the object exists (with a node: a write it has not uploaded yet counts)."""
        try:
            self._native.stat(url)
            return True
        except FileNotFoundError:
            return False

    def stat(self, url):
        """{'url', 'size', 'etag', 'state', 'last_modified'}; state is 'local' while the node
        has not uploaded it yet, else 'durable'."""
        return self._native.stat(url)

    def ls(self, prefix, recursive=False):
        """Entries under prefix (directories as is_dir entries unless recursive). With a node,
        its listing: writes it has not uploaded yet included, no store credentials needed."""
        return self._native.ls(prefix, recursive)

    def delete(self, url):
        self._native.delete(url)

    def flush(self, prefix="", timeout=0):
        """Waits until everything written under prefix through the node is in the object
        store (timeout seconds, 0 for no limit)."""
        self._native.flush(prefix, timeout)

    def commit(self, prefix, expect=0, shard_name="rank-{rank}", timeout=0, durable=False):
        """Writes prefix/_SHOAL_COMMITTED (JSON naming every object with its size and ETag).
        Through a node it returns once the marker is on the cluster's nodes, as the objects
        are; it reaches the store after them (durable=True: waits until all of it is in the
        store). Readers through any member see it at once. With expect=N (rank 0, once its
        own shard is written), first waits for the shards of ranks 0..N-1, shard_name with
        {rank} (or {rank:W}, zero-padded) standing for the rank; the marker then names exactly
        them. timeout (seconds, 0 for no limit) bounds the waits: past it, OSError naming the
        missing shards, and no marker. Returns the marker as a dict ('prefix', 'committed_at',
        'objects', 'bytes', 'contents': [{'key', 'size', 'etag'}], 'shards' with expect)."""
        return json.loads(self._native.commit(prefix, expect, shard_name, timeout, durable))

    def latest_checkpoint(self, prefix):
        """The URL (ending in '/') of the newest step under prefix whose _SHOAL_COMMITTED
        marker exists and whose objects all still match it (size and ETag); None when no step
        is complete. Steps are ordered by the last number in their name."""
        return self._native.latest_checkpoint(prefix)


def latest_checkpoint(prefix, cache=None, token_file=None):
    """Client(cache, token_file).latest_checkpoint(prefix): the newest complete step's URL, or None."""
    return Client(cache, token_file).latest_checkpoint(prefix)
