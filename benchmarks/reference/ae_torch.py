#!/usr/bin/python3
"""PyTorch reference for gentape's autoencoder benchmark (issue 4).

The model is models/ae.h's default: encoder 784-512-256-2 (enc1, enc2, enc_out), decoder
2-256-512-784 (dec1, dec2, dec_out), ReLU after every hidden layer, a linear code and a linear
output; PyTorch's default nn.Linear init (gentape's is the same law, different random numbers).
Loss: per image the squared error summed over the 784 pixels, the batch *mean* of that -- exactly
models/ae.cpp's L = mean_b sum_j (x^_bj - x_bj)^2. Adam (lr 1e-3, PyTorch's defaults otherwise),
batch 128, reshuffled every epoch, the last partial batch kept (1,000 images: 7 x 128 + 104, 8
steps per epoch, as gentape's Batcher), on the first 1,000 Fashion-MNIST training images (pixels
/ 255 in [0, 1]), 50 epochs.

The IDX file is read directly with gzip + numpy into one tensor in memory; each batch is an
index_select of a shuffled permutation, so the time is the model's and not a data pipeline's.
The loss is read back every step (.item()), as benchmarks/bench_ae.cpp does.

Prints one JSON line on stdout (the header goes to stderr):
  seconds        total training time of all epochs (the loop only: no data loading)
  final_loss     mean per-image loss over the last epoch's batches (nats-free: squared pixels)
  epoch1_seconds, steady_epoch_seconds (median of epochs 2..E), cpu_seconds (process CPU time over
  the loop: well under threads x seconds means the threads were not all running), minor_faults,
  steps, images, epochs, threads, engine "torch"

Use Debian's python (/usr/bin/python3, python3-torch 1.13). Best CPU configuration (OpenBLAS via
LD_LIBRARY_PATH, OPENBLAS_CORETYPE unset, GLIBC_TUNABLES for malloc): benchmarks/reference/
README.md; benchmarks/compare_ae.sh sets all of it.

  /usr/bin/python3 benchmarks/reference/ae_torch.py --threads 2
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


class AE(nn.Module):
    def __init__(self, d=784, hidden=(512, 256), k=2):
        super().__init__()
        self.enc1 = nn.Linear(d, hidden[0])
        self.enc2 = nn.Linear(hidden[0], hidden[1])
        self.enc_out = nn.Linear(hidden[1], k)
        self.dec1 = nn.Linear(k, hidden[1])
        self.dec2 = nn.Linear(hidden[1], hidden[0])
        self.dec_out = nn.Linear(hidden[0], d)

    def encode(self, x):
        return self.enc_out(torch.relu(self.enc2(torch.relu(self.enc1(x)))))

    def decode(self, z):
        return self.dec_out(torch.relu(self.dec2(torch.relu(self.dec1(z)))))

    def forward(self, x):
        return self.decode(self.encode(x))


def read_idx_images(path, limit):
    """The first `limit` images of an IDX3 file (optionally .gz) as float32 (N, 784) in [0, 1]."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n, h, w = struct.unpack(">IIII", raw[:16])
    if magic != 0x00000803:
        raise SystemExit("%s: not an IDX3 unsigned-byte image file (magic 0x%08x)" % (path, magic))
    if limit > n:
        raise SystemExit("%s has %d images; asked for %d" % (path, n, limit))
    body = np.frombuffer(raw, dtype=np.uint8, count=limit * h * w, offset=16)
    return torch.from_numpy(body.reshape(limit, h * w).astype(np.float32) / np.float32(255.0)).contiguous()


def find_idx(data_dir, stem):
    for p in (os.path.join(data_dir, stem), os.path.join(data_dir, stem + ".gz")):
        if os.path.exists(p):
            return p
    raise SystemExit("data directory %s has no %s (or %s.gz)" % (data_dir, stem, stem))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all CPUs)")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist", help="directory of the IDX(.gz) files")
    ap.add_argument("--train-limit", type=int, default=1000, help="use the first N training images (default 1000)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    x = read_idx_images(find_idx(args.data_dir, "train-images-idx3-ubyte"), args.train_limit)
    n = x.shape[0]
    print("ae_torch: torch %s, %d threads; env OMP_NUM_THREADS=%s OPENBLAS_CORETYPE=%s GLIBC_TUNABLES=%s" % (
        torch.__version__, torch.get_num_threads(),
        *(os.environ.get(k, "<unset>") for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "GLIBC_TUNABLES"))),
        file=sys.stderr)
    print("  data: %s, first %d training images; AE 784-512-256-2-256-512-784, MSE (sum over pixels, mean over "
          "the batch), Adam lr %g, batch %d, %d epochs, seed %d" % (args.data_dir, n, args.lr, args.batch,
                                                                   args.epochs, args.seed), file=sys.stderr)

    model = AE()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    epoch_secs, steps, last = [], 0, 0.0
    t0, c0, r0 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
    for epoch in range(args.epochs):
        te = time.perf_counter()
        perm = torch.randperm(n)
        loss_sum = 0.0
        for i in range(0, n, args.batch):
            xb = x.index_select(0, perm[i : i + args.batch])
            loss = (model(xb) - xb).pow(2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * xb.shape[0]
            steps += 1
        last = loss_sum / n
        epoch_secs.append(time.perf_counter() - te)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "engine": "torch", "seconds": secs, "final_loss": last, "epoch1_seconds": epoch_secs[0],
        "steady_epoch_seconds": statistics.median(epoch_secs[1:] or epoch_secs), "cpu_seconds": cpu,
        "minor_faults": r1.ru_minflt - r0.ru_minflt, "steps": steps, "images": n, "epochs": args.epochs,
        "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
