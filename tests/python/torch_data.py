"""The Python side of tests/mount_test.cc's data-loading tests: shoal.torch datasets read by a
DataLoader with workers, and ranks saving shards with torch.save at once.

  torch_data.py make DIR N                        N objects of 4-64 KiB (seeded) as files under DIR
  torch_data.py epochs PREFIX N WORKERS EPOCHS PROXY_PORT
      an ObjectDataset over PREFIX (the objects `make` wrote) read by a DataLoader with WORKERS
      workers, shuffled, EPOCHS times; each epoch checks that every object came exactly once
      with its bytes (sha256) and prints one line: the objects, bytes, seconds, objects/s, and
      the GET and HEAD requests the store got meanwhile (the fault proxy's counts)
  torch_data.py iterable PREFIX N RANKS WORKERS   an IterableObjectDataset per rank, each read
      by a DataLoader with WORKERS workers (rank 1's spawned, the others forked): every object
      exactly once across all of them
  torch_data.py no-torch                          `import shoal` with torch made unimportable
  torch_data.py shards PREFIX RANKS               RANKS processes torch.save a shard each at
      once (rank-R.pt under PREFIX), rank 0 commits them; then each is loaded and compared

The cache node is $SHOAL_CACHE.
"""
import hashlib
import json
import os
import random
import sys
import time
import urllib.request


def content(i):
    r = random.Random(i)
    return r.randbytes(r.randint(4 << 10, 64 << 10))


def key(i):
    return "d%d/obj-%05d" % (i % 4, i)  # nested: the dataset lists recursively


def make(directory, n):
    total = 0
    for i in range(n):
        path = os.path.join(directory, key(i))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = content(i)
        with open(path, "wb") as f:
            f.write(data)
        total += len(data)
    print("made %d objects, %d bytes" % (n, total))


def proxy_counts(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/__proxy/stats" % port) as r:
        by = json.load(r)["by_method"]
    return by.get("GET", 0), by.get("HEAD", 0)


# The dataset being read, so a worker can check whose client it reads through.
dataset = None


def digest(data, url):
    # Runs in a DataLoader worker: what came back, and which process read it, through a client
    # that process opened (never one inherited from the main process).
    if dataset is not None:
        assert dataset._objects._pid == os.getpid(), "read through a client opened in another process"
    return url, hashlib.sha256(data).hexdigest(), len(data), os.getpid()


def as_list(batch):
    return batch


def epochs(prefix, n, workers, count, proxy_port):
    import torch
    import shoal.torch
    want = {prefix + key(i): hashlib.sha256(content(i)).hexdigest() for i in range(n)}
    global dataset
    ds = dataset = shoal.torch.ObjectDataset(prefix, transform=digest)
    assert ds._objects._pid == os.getpid()  # the listing's client, in the main process when the workers fork
    assert len(ds) == n, "listed %d objects, want %d" % (len(ds), n)
    assert ds.urls == sorted(want), "the listing differs from the objects written"
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers,
                                         collate_fn=as_list)
    for epoch in range(1, count + 1):
        gets0, heads0 = proxy_counts(proxy_port)
        seen = {}
        pids = set()
        nbytes = 0
        start = time.monotonic()
        for batch in loader:
            for url, sha, size, pid in batch:
                assert sha == want[url], "%s: wrong bytes in epoch %d" % (url, epoch)
                seen[url] = seen.get(url, 0) + 1
                pids.add(pid)
                nbytes += size
        secs = time.monotonic() - start
        gets1, heads1 = proxy_counts(proxy_port)
        twice = [u for u, c in seen.items() if c != 1]
        assert not twice, "read more than once in epoch %d: %s" % (epoch, twice[:5])
        assert len(seen) == n, "epoch %d read %d objects of %d" % (epoch, len(seen), n)
        assert os.getpid() not in pids and len(pids) == workers, "read by %s (main %d)" % (pids, os.getpid())
        print("epoch %d objects %d bytes %d secs %.2f objects/s %.0f store_gets %d store_heads %d workers %d" %
              (epoch, len(seen), nbytes, secs, n / secs, gets1 - gets0, heads1 - heads0, len(pids)), flush=True)


def iterable(prefix, n, ranks, workers):
    import torch
    import shoal.torch
    seen = {}
    for rank in range(ranks):
        ds = shoal.torch.IterableObjectDataset(prefix, transform=digest, rank=rank, world_size=ranks,
                                               shuffle=True, seed=7)
        ds.set_epoch(3)
        # Rank 1's workers are spawned (the dataset pickled to them, without a client), rank 0's forked.
        loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=workers, collate_fn=as_list,
                                             multiprocessing_context="spawn" if rank == 1 else "fork")
        got = 0
        for batch in loader:
            for url, sha, _, pid in batch:
                assert sha == hashlib.sha256(content(int(url[-5:]))).hexdigest(), url
                seen.setdefault(url, []).append((rank, pid))
                got += 1
        assert got == len(ds), "rank %d read %d, its len() is %d" % (rank, got, len(ds))
    twice = {u: w for u, w in seen.items() if len(w) != 1}
    assert not twice, "read more than once: %s" % list(twice.items())[:3]
    assert len(seen) == n, "read %d objects of %d" % (len(seen), n)
    readers = {w[0] for w in seen.values()}  # (rank, worker pid) pairs that read any
    print("iterable objects %d ranks %d readers %d" % (len(seen), ranks, len(readers)))


def no_torch():
    sys.modules["torch"] = None  # `import torch` now raises ImportError
    import shoal
    shoal.Client
    try:
        shoal.torch
    except ImportError as e:
        print("import shoal without torch: ok; shoal.torch: ImportError (%s)" % e)
        return
    sys.exit("shoal.torch imported without torch")


def shard_state(rank):
    import torch
    g = torch.Generator()
    g.manual_seed(1000 + rank)
    return {"rank": torch.tensor(rank), "weight": torch.randn(1024, 1024, generator=g),  # 4 MiB
            "bias": torch.randn(1024, generator=g)}


def save_shard(prefix, rank, ranks, barrier, results):
    import torch
    import shoal
    client = shoal.Client()  # this process's own
    state = shard_state(rank)
    barrier.wait()  # every rank writes at once
    with client.open(prefix + "rank-%d.pt" % rank, "wb") as f:
        torch.save(state, f)
    if rank == 0:
        marker = client.commit(prefix, expect=ranks, shard_name="rank-{rank}.pt", timeout=120)
        results.put(("marker", sorted(s["key"] for s in marker["contents"])))
    results.put(("saved", rank))


def shards(prefix, ranks):
    import multiprocessing
    import torch
    import shoal
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(ranks)
    results = ctx.Queue()
    procs = [ctx.Process(target=save_shard, args=(prefix, r, ranks, barrier, results)) for r in range(ranks)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0, "rank process exited with %s" % p.exitcode
    got = [results.get(timeout=10) for _ in range(ranks + 1)]
    saved = sorted(r for what, r in got if what == "saved")
    assert saved == list(range(ranks)), saved
    marker = [r for what, r in got if what == "marker"][0]
    client = shoal.Client()
    for rank in range(ranks):
        with client.open(prefix + "rank-%d.pt" % rank, "rb") as f:
            loaded = torch.load(f)
        want = shard_state(rank)
        assert sorted(loaded) == sorted(want), sorted(loaded)
        for k in want:
            assert torch.equal(loaded[k], want[k]), "rank %d: tensor %s differs" % (rank, k)
    print("shards %d saved at once, loaded equal; marker names %s" % (ranks, " ".join(marker)))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(args[0], int(args[1]))
    elif cmd == "epochs":
        epochs(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]))
    elif cmd == "iterable":
        iterable(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "no-torch":
        no_torch()
    elif cmd == "shards":
        shards(args[0], int(args[1]))
    else:
        sys.exit("unknown command " + cmd)
