#!/usr/bin/python3
"""PyTorch reference for gentape's DDPM U-Net (issue 5): the same network, its parameter count,
and the training-step and sampling benchmarks.

The network (models/unet.h is the same one in gentape, with the same parameter names, so a
state_dict moves between the two unchanged). With c = --channels (32 by default), temb = 4c:

    temb   = time_fc2(SiLU(time_fc1(sinusoidal_c(t))))      sinusoidal(32) -> 128 -> 128
             (+ class_embed(label) with --num-classes K; label K = "no label", for guidance)
    h      = conv_in(x)                                     1 -> c, 3x3            28x28
    s1     = down1_res1(h);   s2 = down1_res2(s1)           c -> c, c -> c         28x28
    h      = downsample(s2)                                 3x3 stride 2, c -> c   14x14
    s3     = down2_res1(h);   s4 = down2_res2(s3)           c -> 2c, 2c -> 2c      14x14
    h      = mid_res2([mid_attn](mid_res1(s4)))             2c -> 2c twice         14x14
    h      = up2_res1(cat(h, s4)); h = up2_res2(cat(h, s3)) 4c -> 2c twice         14x14
    h      = upsample(nearest_x2(h))                        3x3, 2c -> 2c          28x28
    h      = up1_res1(cat(h, s2)); h = up1_res2(cat(h, s1)) 3c -> c, 2c -> c       28x28
    eps    = conv_out(SiLU(norm_out(h)))                    GroupNorm, c -> 1, 3x3

    ResBlock(x, temb) with cin -> cout channels:
        h = conv1(SiLU(norm1(x)))                           GN(groups, cin), 3x3 cin -> cout
        h = h + temb_proj(SiLU(temb))[:, :, None, None]     Linear temb -> cout, over H x W
        h = conv2(SiLU(norm2(h)))                           GN(groups, cout), 3x3 cout -> cout
        return h + skip(x)                                  1x1 conv when cin != cout, else x

The time projection reads SiLU(temb), as Ho et al.'s DDPM code does (`temb_proj(nonlinearity(temb))`):
the time MLP ends with a Linear, so its output is activated once here and shared by every block.
The parameter count does not depend on that choice; with c = 32 it is exactly 759,937 (--params
checks it). mid_attn (--attention, off by default and not in that count) is single-head
self-attention over the 14x14 positions: GN, a 1x1 conv to q, k, v, softmax(q^T k / sqrt(2c)) v,
a 1x1 conv `proj`, residual.

Sinusoidal embedding (shared with gentape's timestep_embedding op): half = dim/2,
freq_j = exp(-ln(10000) j / half), j = 0..half-1, emb = cat(sin(t freq), cos(t freq)).

Modes (each prints one JSON line on stdout; a human-readable header goes to stderr):
  --params        the parameter count (and whether it is the benchmark's 759,937)
  --bench-train   training steps at --batch 64: q_sample with a linear beta schedule (T = 1000),
                  eps-prediction MSE, Adam lr 2e-4, EMA 0.999 of the weights (--no-ema to skip);
                  reports the median and min of the timed steps after --warmup steps, and the
                  median process CPU time per step (the steadier figure at 1 thread on a loaded
                  machine; cpu_per_wall well under --threads means the threads were not all running). Data:
                  Fashion-MNIST from --data-dir scaled to [-1, 1], or --random-data.
  --bench-sample  --n 16 images x --sample-steps 1000 ancestral DDPM steps (sigma_t^2 = beta_t),
                  total wall time.

Use Debian's python (/usr/bin/python3, python3-torch 1.13); the best CPU configuration is the
VAE benchmark's (benchmarks/reference/README.md): OpenBLAS via LD_LIBRARY_PATH,
OPENBLAS_CORETYPE unset, GLIBC_TUNABLES for malloc, OMP_NUM_THREADS = --threads:

  env -u OPENBLAS_CORETYPE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295 \\
    OMP_NUM_THREADS=2 /usr/bin/python3 benchmarks/reference/ddpm_torch.py --bench-train --threads 2
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

BENCHMARK_PARAMS = 759937  # the count for --channels 32, no attention, unconditional


def timestep_embedding(t, dim):
    """t (B) float -> (B, dim): cat(sin(t freq), cos(t freq)), freq_j = exp(-ln(10000) j / (dim/2))."""
    half = dim // 2
    j = torch.arange(half, dtype=t.dtype, device=t.device)
    freq = torch.exp(-math.log(10000.0) * j / half)
    arg = t[:, None] * freq[None, :]
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb_dim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb_act):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(temb_act)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class AttnBlock(nn.Module):
    """x + proj(V softmax(Q^T K / sqrt(C))^T): single-head self-attention over the H*W positions."""

    def __init__(self, c, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, hh, ww = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3 * c, hh * ww)
        q, k, v = qkv[:, :c], qkv[:, c : 2 * c], qkv[:, 2 * c :]  # each (B, C, N)
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), dim=-1)  # (B, N, N)
        out = torch.bmm(v, attn.transpose(1, 2))  # (B, C, N): out[:, i] = sum_j attn[i, j] v[:, j]
        return x + self.proj(out.reshape(b, c, hh, ww))


class UNet(nn.Module):
    def __init__(self, channels=32, in_channels=1, groups=8, attention=False, num_classes=0):
        super().__init__()
        c, temb = channels, 4 * channels
        self.channels, self.num_classes = channels, num_classes
        self.time_fc1 = nn.Linear(c, temb)
        self.time_fc2 = nn.Linear(temb, temb)
        if num_classes > 0:
            self.class_embed = nn.Embedding(num_classes + 1, temb)  # row num_classes = "no label"
        self.conv_in = nn.Conv2d(in_channels, c, 3, padding=1)
        self.down1_res1 = ResBlock(c, c, temb, groups)
        self.down1_res2 = ResBlock(c, c, temb, groups)
        self.downsample = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.down2_res1 = ResBlock(c, 2 * c, temb, groups)
        self.down2_res2 = ResBlock(2 * c, 2 * c, temb, groups)
        self.mid_res1 = ResBlock(2 * c, 2 * c, temb, groups)
        if attention:
            self.mid_attn = AttnBlock(2 * c, groups)
        self.mid_res2 = ResBlock(2 * c, 2 * c, temb, groups)
        self.up2_res1 = ResBlock(4 * c, 2 * c, temb, groups)
        self.up2_res2 = ResBlock(4 * c, 2 * c, temb, groups)
        self.upsample = nn.Conv2d(2 * c, 2 * c, 3, padding=1)
        self.up1_res1 = ResBlock(3 * c, c, temb, groups)
        self.up1_res2 = ResBlock(2 * c, c, temb, groups)
        self.norm_out = nn.GroupNorm(groups, c)
        self.conv_out = nn.Conv2d(c, in_channels, 3, padding=1)

    def forward(self, x, t, labels=None):
        temb = self.time_fc2(F.silu(self.time_fc1(timestep_embedding(t, self.channels))))
        if self.num_classes > 0:
            if labels is None:
                labels = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            temb = temb + self.class_embed(labels)
        ta = F.silu(temb)
        h = self.conv_in(x)
        s1 = self.down1_res1(h, ta)
        s2 = self.down1_res2(s1, ta)
        h = self.downsample(s2)
        s3 = self.down2_res1(h, ta)
        s4 = self.down2_res2(s3, ta)
        h = self.mid_res1(s4, ta)
        if hasattr(self, "mid_attn"):
            h = self.mid_attn(h)
        h = self.mid_res2(h, ta)
        h = self.up2_res1(torch.cat([h, s4], 1), ta)
        h = self.up2_res2(torch.cat([h, s3], 1), ta)
        h = self.upsample(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.up1_res1(torch.cat([h, s2], 1), ta)
        h = self.up1_res2(torch.cat([h, s1], 1), ta)
        return self.conv_out(F.silu(self.norm_out(h)))


def linear_schedule(T):
    """beta_t = (1 - (t-1)/(T-1)) 1e-4 + ((t-1)/(T-1)) 0.02, t = 1..T (index t-1); VP: alpha = 1 - beta."""
    s = torch.arange(T, dtype=torch.float64) / (T - 1)
    beta = (1 - s) * 1e-4 + s * 0.02
    alpha = 1 - beta
    alpha_bar = torch.cumprod(alpha, 0)
    return beta.float(), alpha.float(), alpha_bar.float()


def load_fashion(data_dir, limit):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from vae_torch import load_images  # the same IDX reader as the VAE reference

    x = load_images(data_dir, "train")
    if limit:
        x = x[:limit]
    return (x.reshape(-1, 1, 28, 28) * 2 - 1).contiguous()  # [-1, 1]


def blas_header(threads):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from vae_torch import blas_description

    env = " ".join("%s=%s" % (k, os.environ.get(k, "<unset>"))
                   for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "GLIBC_TUNABLES"))
    return "ddpm_torch: torch %s, %d threads (at::get_num_threads %d), mkldnn %s, BLAS %s\n  env: %s" % (
        torch.__version__, threads, torch.get_num_threads(), torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        blas_description(), env)


def bench_train(model, args):
    T = 1000
    _, _, alpha_bar = linear_schedule(T)
    sqrt_ab, sqrt_1mab = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    if args.random_data:
        data = torch.rand(max(args.batch * 4, 256), 1, 28, 28) * 2 - 1
        source = "random U(-1, 1)"
    else:
        data = load_fashion(args.data_dir, args.train_limit)
        source = args.data_dir
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ema = [p.detach().clone() for p in model.parameters()]
    params = list(model.parameters())
    n = data.shape[0]
    times, cpus, losses = [], [], []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for step in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        idx = torch.randint(0, n, (args.batch,))
        x0 = data.index_select(0, idx)
        t = torch.randint(1, T + 1, (args.batch,))  # the course's t = 1..T (tables are 0-based: t - 1)
        eps = torch.randn_like(x0)
        xt = sqrt_ab[t - 1].view(-1, 1, 1, 1) * x0 + sqrt_1mab[t - 1].view(-1, 1, 1, 1) * eps
        # the network reads t = 1..T as a float (models/diffusion.h's index convention)
        loss = F.mse_loss(model(xt, t.float()), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if not args.no_ema:
            with torch.no_grad():  # ema = d ema + (1 - d) p
                torch._foreach_mul_(ema, args.ema)
                torch._foreach_add_(ema, params, alpha=1 - args.ema)
        losses.append(loss.item())  # read back every step, as gentape does
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"mode": "bench-train", "batch": args.batch, "steps": args.steps, "warmup": args.warmup,
            "median_step_s": statistics.median(times), "min_step_s": min(times), "max_step_s": max(times),
            "median_step_cpu_s": statistics.median(cpus), "cpu_per_wall": sum(cpus) / sum(times), "first_loss": losses[0], "last_loss": losses[-1],
            "ema": not args.no_ema, "data": source,
            "involuntary_switches": r1.ru_nivcsw - r0.ru_nivcsw}


@torch.no_grad()
def bench_sample(model, args):
    T = args.sample_steps
    beta, alpha, alpha_bar = linear_schedule(T)
    model.eval()
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.n, 1, 28, 28, generator=g)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in reversed(range(T)):  # index i is the course's t = i + 1
        tt = torch.full((args.n,), float(i + 1))
        eps = model(x, tt)
        # x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sigma_t z, z = 0 at t = 1
        x = (x - beta[i] / (1 - alpha_bar[i]).sqrt() * eps) / alpha[i].sqrt()
        if i > 0:
            x = x + beta[i].sqrt() * torch.randn(x.shape, generator=g)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"mode": "bench-sample", "n": args.n, "sample_steps": T, "total_s": secs,
            "per_step_s": secs / T, "cpu_per_wall": cpu / secs, "sample_mean": x.mean().item(),
            "sample_std": x.std().item()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--params", action="store_true", help="print the parameter count")
    mode.add_argument("--bench-train", action="store_true", help="time training steps")
    mode.add_argument("--bench-sample", action="store_true", help="time ancestral sampling")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all CPUs)")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("--attention", action="store_true", help="self-attention at 14x14 (not in the 759,937)")
    ap.add_argument("--num-classes", type=int, default=0, help="class-conditional (label K = no label)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--no-ema", action="store_true")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    ap.add_argument("--random-data", action="store_true", help="U(-1, 1) images instead of Fashion-MNIST")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--n", type=int, default=16, help="images to sample")
    ap.add_argument("--sample-steps", type=int, default=1000, help="T for sampling")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = UNet(args.channels, 1, args.groups, args.attention, args.num_classes)
    n_params = sum(p.numel() for p in model.parameters())
    config = {"channels": args.channels, "groups": args.groups, "attention": args.attention,
              "num_classes": args.num_classes, "params": n_params, "threads": args.threads,
              "torch": torch.__version__}
    if args.params:
        default = args.channels == 32 and args.groups == 8 and not args.attention and args.num_classes == 0
        out = dict(config, mode="params")
        if default:
            out["matches_benchmark_759937"] = n_params == BENCHMARK_PARAMS
        print(json.dumps(out))
        return
    print(blas_header(args.threads), file=sys.stderr, flush=True)
    res = bench_train(model, args) if args.bench_train else bench_sample(model, args)
    print(json.dumps(dict(config, **res)), flush=True)


if __name__ == "__main__":
    main()
