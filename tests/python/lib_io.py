"""The Python side of tests/mount_test.cc's library-written files: zipfile, np.savez and tarfile
write through `shoal mount` or the binding the way they write to disk, seeking back to patch
headers; the same calls write the same files to a local directory to compare with.

  lib_io.py write TARGET LOCAL   x.zip, x.npz and x.tar (its first header patched afterwards),
                                 then y.bin written, appended to ("ab") and truncated, and z.bin
                                 written past a seek beyond its end (a hole), into
                                 TARGET (a directory in a mount, or a URL prefix: the binding,
                                 node from $SHOAL_CACHE) and into the directory LOCAL
  lib_io.py sums TARGET          "name sha256" of each, read back through TARGET
"""
import hashlib
import io
import os
import sys
import tarfile
import zipfile

import numpy

NAMES = ["x.zip", "x.npz", "x.tar", "y.bin", "z.bin"]


def is_url(target):
    return "://" in target


class Place:
    """Opens files under a directory, or objects under a URL prefix through the binding."""

    def __init__(self, target):
        self.target = target
        if is_url(target):
            import shoal
            self.client = shoal.Client()

    def open(self, name, mode):
        if is_url(self.target):
            return self.client.open(self.target + name, mode)
        return open(os.path.join(self.target, name), mode)


def write_zip(f):
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for i in range(3):
            # open(name, "w") writes the member's header, its data, then seeks back to fill in
            # the header's sizes and CRC.
            with z.open("member-%d.txt" % i, "w") as m:
                m.write(("line %d of member %d\n" % (i, i)).encode() * (50000 * (i + 1)))


def write_npz(f):
    rng = numpy.random.default_rng(7)
    numpy.savez(f, weights=rng.standard_normal((1536, 2048)).astype(numpy.float32),  # 12 MiB
                bias=numpy.arange(1000, dtype=numpy.int64), step=numpy.array(100))


def write_tar(f):
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for i, size in enumerate([100, 3 << 20, 0, 70000]):
            info = tarfile.TarInfo("dir/file-%d" % i)
            info.size = size
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(bytes((i * 31 + k) % 251 for k in range(size))))
    # Patch the first header afterwards, as writers that learn a size late do.
    patched = tarfile.TarInfo("dir/file-0")
    patched.size = 100
    patched.mtime = 1800000000
    f.seek(0)
    f.write(patched.tobuf(format=tarfile.USTAR_FORMAT))
    f.seek(0, io.SEEK_END)


def write_all(place):
    for name, fn in (("x.zip", write_zip), ("x.npz", write_npz), ("x.tar", write_tar)):
        with place.open(name, "wb") as f:
            fn(f)
    with place.open("y.bin", "wb") as f:
        f.write(b"a" * 5000)
    with place.open("y.bin", "ab") as f:  # a new version that starts with the old bytes
        f.write(b"b" * 3000)
        f.seek(100)
        f.write(b"c" * 10)  # appends go to the end whatever the position
        f.truncate(7000)
    with place.open("z.bin", "wb") as f:
        f.write(b"head" * 10)
        f.seek((1 << 20) + 3)  # past the end: the bytes between read as zeros
        f.write(b"tail")


def sums(place):
    for name in NAMES:
        with place.open(name, "rb") as f:
            print(name, hashlib.sha256(f.read()).hexdigest())
    with place.open("x.zip", "rb") as f:
        assert zipfile.ZipFile(f).testzip() is None
    with place.open("x.npz", "rb") as f:
        assert int(numpy.load(io.BytesIO(f.read()))["step"]) == 100


def main():
    if sys.argv[1] == "write":
        write_all(Place(sys.argv[2]))
        write_all(Place(sys.argv[3]))
        if is_url(sys.argv[2]):
            import shoal
            with shoal.Client() as c:
                assert c.exists(sys.argv[2] + "x.zip") and not c.exists(sys.argv[2] + "none")
                marker = c.commit(sys.argv[2])
                assert marker["objects"] == len(NAMES), marker
        print("written")
    elif sys.argv[1] == "sums":
        sums(Place(sys.argv[2]))
    else:
        sys.exit("usage: lib_io.py write TARGET LOCAL | sums TARGET")


if __name__ == "__main__":
    main()
