#!/usr/bin/python3
"""PyTorch reference for gentape's VAE benchmark (issue 3).

The model is pytorch/examples' VAE (vae/main.py): fc1 784->400, fc21/fc22 400->20 (mu, logvar),
fc3 20->400, fc4 400->784, ReLU, a Bernoulli decoder on the raw (non-binarised) pixels in [0, 1],
one sample of z per image. Trained with Adam (lr 1e-3, PyTorch defaults otherwise), batch 128,
reshuffled every epoch, the last partial batch kept (as DataLoader and gentape's Batcher do).

Two deliberate differences from the example, both so that the two engines do the same work:
  * the loss is the batch *mean* of the per-sample -ELBO (what gentape minimises), not the sum.
    Adam is invariant to a constant scale of the loss apart from its eps (1e-8), so this trains
    the same model; --reduction sum runs the example's sum to check.
  * the reconstruction term is BCE-with-logits on fc4's output (the example applies sigmoid and
    then BCE, which is the same function, less stable); and the data are whole tensors in memory
    indexed by a shuffled permutation, not a DataLoader with transforms, so that the timing is
    the model's and not Python's data pipeline ("PyTorch at its best").

Per epoch it reports the training time (the training loop only: no evaluation, no data loading
from disk), the process CPU time over that loop (cpu/wall well under the thread count means the
threads were not all running: a loaded machine), the mean training loss, and the test -ELBO: one sample of z per image, in nats per
image, averaged over the 10,000 test images (evaluated in batches of 500, as gentape does).

Use Debian's python (/usr/bin/python3, python3-torch 1.13). Best CPU configuration: see
benchmarks/reference/README.md (OpenBLAS via LD_LIBRARY_PATH, OPENBLAS_CORETYPE unset,
GLIBC_TUNABLES for malloc); benchmarks/compare_vae.sh sets all of it.

  /usr/bin/python3 benchmarks/reference/vae_torch.py --epochs 3 --threads 2
  /usr/bin/python3 benchmarks/reference/vae_torch.py --json    # one JSON line per epoch on stdout
"""
import argparse
import ctypes
import gzip
import json
import os
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class VAE(nn.Module):
    def __init__(self, d=784, h=400, z=20):
        super().__init__()
        self.fc1 = nn.Linear(d, h)
        self.fc21 = nn.Linear(h, z)
        self.fc22 = nn.Linear(h, z)
        self.fc3 = nn.Linear(z, h)
        self.fc4 = nn.Linear(h, d)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))  # logits

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def per_sample_terms(logits, x, mu, logvar):
    """-log p(x|z) and KL(q(z|x) || N(0, I)), each (B,), in nats."""
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    return recon, kl


def read_idx(path):
    """An IDX file (optionally .gz) as a uint8 tensor of its stated shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    if (magic >> 8) & 0xFF != 0x08:
        raise SystemExit("%s: not an unsigned-byte IDX file (magic 0x%08x)" % (path, magic))
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    body = bytearray(raw[4 + 4 * ndim :])
    n = 1
    for d in dims:
        n *= d
    if len(body) != n:
        raise SystemExit("%s: %d bytes of data, expected %d for shape %s" % (path, len(body), n, dims))
    return torch.frombuffer(body, dtype=torch.uint8).reshape(dims)


def find_idx(data_dir, stem):
    for p in (os.path.join(data_dir, stem), os.path.join(data_dir, stem + ".gz")):
        if os.path.exists(p):
            return p
    raise SystemExit("data directory %s has no %s (or %s.gz)" % (data_dir, stem, stem))


def load_images(data_dir, split):
    im = read_idx(find_idx(data_dir, split + "-images-idx3-ubyte"))
    return im.reshape(im.shape[0], -1).to(torch.float32).div_(255.0).contiguous()


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def blas_description():
    """The library that really provides torch's sgemm_ in this process, and OpenBLAS's own report
    (its build and the kernels it chose, e.g. "core Zen") when it is OpenBLAS."""
    a = torch.ones(64, 64)
    torch.mm(a, a)  # make sure the BLAS is loaded and initialised
    maps = []
    try:
        with open("/proc/self/maps") as f:
            maps = [line.split()[-1] for line in f if line.rstrip().endswith(".so") or ".so." in line]
    except OSError:
        pass
    torch_cpu = next((p for p in maps if os.path.basename(p).startswith("libtorch_cpu.so")), None)
    provider = None
    try:  # resolve sgemm_ the way libtorch_cpu's dependencies do, then ask which file holds it
        sgemm = ctypes.cast(ctypes.CDLL(torch_cpu).sgemm_, ctypes.c_void_p)
        info = _DlInfo()
        if ctypes.CDLL(None).dladdr(sgemm, ctypes.byref(info)) and info.dli_fname:
            provider = os.path.realpath(info.dli_fname.decode())
    except (OSError, AttributeError, TypeError):
        pass
    if provider is None:
        blas = sorted({os.path.realpath(p) for p in maps if "blas" in os.path.basename(p) or "mkl" in p})
        desc = "sgemm_ provider unknown; loaded: " + (", ".join(blas) or "no BLAS library")
    else:
        desc = "sgemm_ from " + provider
        try:
            lib = ctypes.CDLL(provider)  # already mapped: the same handle
            get_config, corename = lib.openblas_get_config, lib.openblas_get_corename
            get_config.restype = corename.restype = ctypes.c_char_p
            desc += " [%s, core %s]" % (get_config().decode().strip(), corename().decode())
        except (OSError, AttributeError):
            desc += " [not OpenBLAS]"
    build = next((t for t in torch.__config__.show().replace(",", " ").split() if t.startswith("BLAS_INFO=")), "")
    return "%s (torch build %s)" % (desc, build or "BLAS_INFO unknown")


@torch.no_grad()
def evaluate(model, x, batch):
    model.eval()
    rec = kl = 0.0
    for i in range(0, x.shape[0], batch):
        xb = x[i : i + batch]
        logits, mu, logvar = model(xb)  # one sample of z, as in training
        r, k = per_sample_terms(logits, xb, mu, logvar)
        rec += r.double().sum().item()
        kl += k.double().sum().item()
    n = x.shape[0]
    model.train()
    return (rec + kl) / n, rec / n, kl / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all CPUs)")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist", help="directory of the 4 IDX(.gz) files")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reduction", choices=["mean", "sum"], default="mean",
                    help="loss over the batch: mean (gentape's, default) or sum (pytorch/examples')")
    ap.add_argument("--train-limit", type=int, default=0, help="use only the first N training images (quick checks)")
    ap.add_argument("--eval-batch", type=int, default=500)
    ap.add_argument("--json", action="store_true", help="stdout: one JSON line per epoch (the header goes to stderr)")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    header_out = sys.stderr if args.json else sys.stdout

    t_load = time.perf_counter()
    x_train = load_images(args.data_dir, "train")
    x_test = load_images(args.data_dir, "t10k")
    if args.train_limit:
        x_train = x_train[: args.train_limit].contiguous()
    t_load = time.perf_counter() - t_load

    print("vae_torch: torch %s, %d threads (at::get_num_threads %d), BLAS %s" % (
        torch.__version__, args.threads, torch.get_num_threads(), blas_description()), file=header_out)
    print("  env: OMP_NUM_THREADS=%s OPENBLAS_CORETYPE=%s GLIBC_TUNABLES=%s" % tuple(
        os.environ.get(k, "<unset>") for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "GLIBC_TUNABLES")),
        file=header_out)
    print("  data: %s, %d train / %d test images, loaded in %.1f s; 784-400-20 Bernoulli, batch %d, Adam lr %g, "
          "loss %s over the batch, seed %d" % (args.data_dir, x_train.shape[0], x_test.shape[0], t_load, args.batch,
                                              args.lr, args.reduction, args.seed), file=header_out)
    header_out.flush()

    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n = x_train.shape[0]
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0, c0, r0 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
        perm = torch.randperm(n)
        loss_sum = 0.0
        for i in range(0, n, args.batch):
            xb = x_train.index_select(0, perm[i : i + args.batch])
            logits, mu, logvar = model(xb)
            recon, kl = per_sample_terms(logits, xb, mu, logvar)
            per_sample = recon + kl
            loss = per_sample.mean() if args.reduction == "mean" else per_sample.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += per_sample.detach().sum().item()  # read back every step, as gentape does on the CPU
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        te = time.perf_counter()
        neg_elbo, rec, kl = evaluate(model, x_test, args.eval_batch)
        eval_secs = time.perf_counter() - te
        m = {"epoch": epoch, "seconds": secs, "train_loss": loss_sum / n, "test_neg_elbo": neg_elbo,
             "test_recon": rec, "test_kl": kl, "eval_seconds": eval_secs, "samples_per_s": n / secs,
             "cpu_seconds": cpu, "sys_seconds": r1.ru_stime - r0.ru_stime, "minor_faults": r1.ru_minflt - r0.ru_minflt,
             "involuntary_switches": r1.ru_nivcsw - r0.ru_nivcsw, "threads": args.threads}
        if args.json:
            print(json.dumps(m), flush=True)
        else:
            print("epoch %3d/%d  train %.4f  test -elbo %.4f (recon %.4f, kl %.4f)  %.2f s  %.0f samples/s  "
                  "(cpu/wall %.2f of %d; eval %.2f s)" % (epoch, args.epochs, m["train_loss"], neg_elbo, rec, kl, secs,
                                                         n / secs, cpu / secs, args.threads, eval_secs), flush=True)


if __name__ == "__main__":
    main()
