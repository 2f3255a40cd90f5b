"""The Python side of tests/mount_test.cc: PyTorch checkpoints through `shoal mount` and through
the binding, and a writer and a reader racing on one file.

  torch_io.py save TARGET SEED     a model's state dict (44 MiB, seeded) to TARGET
  torch_io.py check TARGET SEED    loads TARGET, compares tensor by tensor with the seeded model
  torch_io.py write PATH MIB       writes MIB MiB of a pattern to PATH, 1 MiB at a time, slowly
  torch_io.py watch PATH MIB SECS  reads PATH over and over for SECS seconds; prints what it saw

TARGET is a path (a file in a mount; saved to a temporary name, then renamed into place, as
checkpoint writers do) or a URL (through shoal.Client, the cache node from $SHOAL_CACHE).
"""
import hashlib
import os
import sys
import time

import torch


def model(seed):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 1024),
                              torch.nn.LayerNorm(1024))
    state = net.state_dict()
    state["embedding"] = torch.randn(3000, 1024)  # about 12 MiB more: several chunks
    state["step"] = torch.tensor(seed)
    return state


def is_url(target):
    return "://" in target


def save(target, seed):
    state = model(seed)
    if is_url(target):
        import shoal
        client = shoal.Client()
        with client.open(target, "wb") as f:
            torch.save(state, f)
    else:
        tmp = target + ".tmp"
        torch.save(state, tmp)
        os.replace(tmp, target)
    print("saved %d tensors" % len(state))


def check(target, seed):
    want = model(seed)
    if is_url(target):
        import shoal
        client = shoal.Client()
        with client.open(target, "rb") as f:
            got = torch.load(f)
    else:
        got = torch.load(target)
    assert sorted(got.keys()) == sorted(want.keys()), (sorted(got.keys()), sorted(want.keys()))
    for k in want:
        assert torch.equal(got[k], want[k]), "tensor %s differs" % k
    print("equal %d tensors" % len(want))


def pattern(mib):
    block = hashlib.sha256(b"shoal").digest() * (1 << 15)  # 1 MiB
    return [bytes([i % 251]) + block[1:] for i in range(mib)]


def write(path, mib):
    with open(path, "wb") as f:
        for piece in pattern(mib):
            f.write(piece)
            f.flush()
            time.sleep(0.02)
    print("wrote %d MiB" % mib)


def watch(path, mib, secs):
    whole = hashlib.sha256(b"".join(pattern(mib))).hexdigest()
    absent = complete = torn = 0
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            absent += 1
            time.sleep(0.05)
            continue
        if hashlib.sha256(data).hexdigest() == whole:
            complete += 1
            if complete >= 3:
                break
        else:
            torn += 1
            print("torn read: %d bytes" % len(data))
        time.sleep(0.05)
    print("absent %d complete %d torn %d" % (absent, complete, torn))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "save":
        save(sys.argv[2], int(sys.argv[3]))
    elif cmd == "check":
        check(sys.argv[2], int(sys.argv[3]))
    elif cmd == "write":
        write(sys.argv[2], int(sys.argv[3]))
    elif cmd == "watch":
        watch(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit("unknown command " + cmd)
