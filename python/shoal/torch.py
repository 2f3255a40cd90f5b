"""PyTorch datasets over the objects under a URL prefix, read through a Shoal cache node.

    import torch, shoal.torch
    ds = shoal.torch.ObjectDataset("az://data/train/", cache="127.0.0.1:7070",
                                   transform=lambda data, key: decode(data))
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=4)

The keys are listed once, when the dataset is made (through the node when there is one), and
sorted: index i is the same object in every process. Each process (the main one and every
DataLoader worker) reads through a shoal.Client of its own, opened on its first read: a client
is never used across fork(), and a dataset pickled to a worker (the "spawn" start method)
carries no client, only its keys. Threads of one process may read a dataset at once: they share
its client, whose calls are thread-safe and release the GIL.

Importing this module needs torch; `import shoal` alone does not.
"""

import os

import torch.utils.data

from . import Client

__all__ = ["ObjectDataset", "IterableObjectDataset"]


class _Objects:
    """The sorted object URLs under a prefix, and a client per process to read them with."""

    def __init__(self, prefix, cache, token_file, transform):
        self.prefix = prefix
        self.cache = cache
        self.token_file = token_file
        self.transform = transform
        self._client = None
        self._pid = None
        self.urls = sorted(e.url for e in self.client().ls(prefix, recursive=True) if not e.is_dir)

    def client(self):
        # A client made before a fork (its connections, its threads) belongs to the parent: the
        # child opens its own and leaves the parent's alone (dropping it here would run its
        # destructor on state the child does not own).
        if self._client is None or self._pid != os.getpid():
            if self._client is not None:
                _orphans.append(self._client)
            self._client = Client(self.cache, self.token_file)
            self._pid = os.getpid()
        return self._client

    def read(self, url):
        with self.client().open(url, "rb") as f:
            data = f.read()
        return self.transform(data, url) if self.transform is not None else data

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_client"] = None  # pickled to a worker or another host: it opens its own
        state["_pid"] = None
        return state


# Clients inherited across fork(), kept (never destroyed) in the child.
_orphans = []


class ObjectDataset(torch.utils.data.Dataset):
    """A map-style dataset: item i is the bytes of the i-th object under prefix (keys sorted),
    or transform(bytes, url) when transform is given. len() is the number of objects.

    prefix: a URL ending in "/" (every object under it, at any depth). cache, token_file: as
    for shoal.Client (default: $SHOAL_CACHE, $SHOAL_TOKEN_FILE). The listing happens here,
    once; objects added later are not seen."""

    def __init__(self, prefix, cache=None, token_file=None, transform=None):
        self._objects = _Objects(prefix, cache, token_file, transform)

    @property
    def urls(self):
        """The object URLs, in index order."""
        return self._objects.urls

    def __len__(self):
        return len(self._objects.urls)

    def __getitem__(self, i):
        return self._objects.read(self._objects.urls[i])


class IterableObjectDataset(torch.utils.data.IterableDataset):
    """An iterable dataset over the objects under prefix (keys sorted), each yielded as its
    bytes or transform(bytes, url). The keys are split across ranks and, within a rank, across
    DataLoader workers: object k goes to rank k % world_size and, there, to the worker of index
    (k // world_size) % num_workers, so every object is read once per epoch by exactly one
    worker of one rank. rank and world_size default to torch.distributed's when it is
    initialized, else 0 and 1. shuffle: each epoch (set_epoch) in a different order, the same
    in every rank (seeded with seed + epoch), before the split."""

    def __init__(self, prefix, cache=None, token_file=None, transform=None, rank=None, world_size=None,
                 shuffle=False, seed=0):
        self._objects = _Objects(prefix, cache, token_file, transform)
        dist = torch.distributed
        initialized = dist.is_available() and dist.is_initialized()
        self.rank = rank if rank is not None else (dist.get_rank() if initialized else 0)
        self.world_size = world_size if world_size is not None else (dist.get_world_size() if initialized else 1)
        if not 0 <= self.rank < self.world_size:
            raise ValueError("rank %d is not in 0..world_size-1 (world_size %d)" % (self.rank, self.world_size))
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    @property
    def urls(self):
        """Every object URL under the prefix (all ranks'), sorted."""
        return self._objects.urls

    def set_epoch(self, epoch):
        self.epoch = epoch

    def shard(self, worker_id=0, num_workers=1):
        """The URLs this rank's worker `worker_id` of `num_workers` reads this epoch, in order."""
        urls = self._objects.urls
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            urls = [urls[i] for i in torch.randperm(len(urls), generator=g).tolist()]
        mine = urls[self.rank::self.world_size]
        return mine[worker_id::num_workers]

    def __len__(self):
        """Objects this rank reads per epoch (all its workers together)."""
        return len(self._objects.urls[self.rank::self.world_size])

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker_id, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for url in self.shard(worker_id, num_workers):
            yield self._objects.read(url)
