// bench_norm.cpp: GroupNorm forward and backward (kernels/norm.h) at the DDPM U-Net's sizes.
//
// Cases (8 groups, as every GroupNorm of the U-Net):
//   (64, 32, 28, 28)   the 28 x 28 ResBlocks at batch 64: 1.6M floats, 6.4 MiB per array
//   (64, 64, 14, 14)   the 14 x 14 ResBlocks:              0.8M floats, 3.2 MiB per array
// Bytes counted are the minimum traffic of each pass (STREAM's convention, write-allocate not
// counted): forward reads x and writes y (2 x 4 N; the statistics sweeps re-read a group of
// 4 x 784 floats from L1/L2, not from memory); backward reads dy, x and dx and writes dx
// (4 x 4 N). Both arrays fit this VM's 32 MiB L3, so the figures are cache bandwidth.
//
// Check first: the CPU forward (y) and backward (dx, dweight, dbias) against double-precision
// loops of norm.h's equations; on CUDA each against the CPU.
//
//   bench_norm [reps=20] [warmup=3]
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "benchmarks/harness.h"
#include "core/device.h"
#include "core/tensor.h"
#include "kernels/norm.h"

namespace {

using gt::Device;
using gt::Tensor;

// Float32 sums of up to 3136 O(1) terms per group (8 lanes): ~1e-6 relative in the statistics,
// and the weight gradient sums 64 x 784 terms per channel: ~1e-4 absolute on values of ~100.
constexpr double kAtol = 1e-4;
constexpr double kRtol = 1e-4;
constexpr float kEps = 1e-5f;

struct Case {
  int64_t N, C, H, W, G;
};

// y, dx (with dx starting at 0), dw, db in double from norm.h's equations.
void reference(const Case& k, const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
               const std::vector<float>& dy, std::vector<double>& y, std::vector<double>& dx, std::vector<double>& dw,
               std::vector<double>& db) {
  const int64_t S = k.H * k.W, Cg = k.C / k.G, M = Cg * S;
  y.assign(x.size(), 0);
  dx.assign(x.size(), 0);
  dw.assign((size_t)k.C, 0);
  db.assign((size_t)k.C, 0);
  std::vector<double> xhat((size_t)M);
  for (int64_t r = 0; r < k.N * k.G; ++r) {
    const size_t o = (size_t)(r * M);
    const int64_t c0 = (r % k.G) * Cg;
    double mu = 0, var = 0;
    for (int64_t i = 0; i < M; ++i) mu += x[o + i];
    mu /= (double)M;
    for (int64_t i = 0; i < M; ++i) var += (x[o + i] - mu) * (x[o + i] - mu);
    var /= (double)M;
    const double rs = 1.0 / std::sqrt(var + kEps);
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < M; ++i) {
      const int64_t c = c0 + i / S;
      xhat[(size_t)i] = (x[o + i] - mu) * rs;
      y[o + i] = xhat[(size_t)i] * w[(size_t)c] + b[(size_t)c];
      const double gy = dy[o + i] * (double)w[(size_t)c];
      sg += gy;
      sgx += gy * xhat[(size_t)i];
      dw[(size_t)c] += dy[o + i] * xhat[(size_t)i];
      db[(size_t)c] += dy[o + i];
    }
    for (int64_t i = 0; i < M; ++i) {
      const int64_t c = c0 + i / S;
      dx[o + i] = rs * (dy[o + i] * (double)w[(size_t)c] - sg / M - xhat[(size_t)i] * sgx / M);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  gt::bench::Options opt = gt::bench::parse_options(argc, argv, 20);
  const bool cuda = gt::cuda_available();
  gt::bench::print_machine(Device::CPU);
  if (cuda) gt::bench::print_machine(Device::CUDA);
  std::printf("timing: median (and min) of %d repetitions after %d warm-up runs\n", opt.reps, opt.warmup);

  for (const Case k : {Case{64, 32, 28, 28, 8}, Case{64, 64, 14, 14, 8}}) {
    const int64_t S = k.H * k.W, n = k.N * k.C * S;
    const std::string name = "group_norm (" + std::to_string(k.N) + ", " + std::to_string(k.C) + ", " +
                             std::to_string(k.H) + ", " + std::to_string(k.W) + ") G=" + std::to_string(k.G);
    std::vector<float> x = gt::bench::random_uniform(n, -2.f, 2.f, 21);
    std::vector<float> dy = gt::bench::random_uniform(n, -1.f, 1.f, 22);
    std::vector<float> w = gt::bench::random_uniform(k.C, 0.5f, 1.5f, 23);
    std::vector<float> b = gt::bench::random_uniform(k.C, -0.5f, 0.5f, 24);
    std::vector<double> ry, rdx, rdw, rdb;
    reference(k, x, w, b, dy, ry, rdx, rdw, rdb);

    // ---- CPU ----
    std::vector<float> y(n), mean(2 * k.N * k.G), rstd(k.N * k.G), dx(n, 0.f), dw(k.C, 0.f), db(k.C, 0.f);
    std::vector<float> work(2 * k.N * k.C);
    auto fwd = [&] {
      gt::group_norm_forward_cpu(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), k.N, k.C, S, k.G,
                                 kEps);
    };
    auto bwd = [&] {
      gt::group_norm_backward_cpu(dx.data(), dw.data(), db.data(), work.data(), dy.data(), x.data(), mean.data(),
                                  rstd.data(), w.data(), k.N, k.C, S, k.G);
    };
    fwd();
    bwd();
    gt::bench::check_close(name + " fwd cpu vs double", y, ry, kAtol, kRtol);
    gt::bench::check_close(name + " dx cpu vs double", dx, rdx, kAtol, kRtol);
    gt::bench::check_close(name + " dweight cpu vs double", dw, rdw, kAtol, kRtol);
    gt::bench::check_close(name + " dbias cpu vs double", db, rdb, kAtol, kRtol);

    gt::bench::Timing t = gt::bench::time_fn(Device::CPU, fwd, opt);
    gt::bench::report_gbs(name + " fwd", Device::CPU, t, 2.0 * 4 * n);
    t = gt::bench::time_fn(Device::CPU, bwd, opt);  // dx keeps accumulating: the timing does not care
    gt::bench::report_gbs(name + " bwd", Device::CPU, t, 4.0 * 4 * n);
    t = gt::bench::time_fn(Device::CPU, [&] { fwd(); bwd(); }, opt);
    gt::bench::report_gbs(name + " fwd+bwd", Device::CPU, t, 6.0 * 4 * n);

    // ---- CUDA ----
#if GENTAPE_HAS_CUDA
    if (cuda) {
      auto up = [](const std::vector<float>& v) { return Tensor::from_vector(v, {(int64_t)v.size()}, Device::CUDA); };
      Tensor gx = up(x), gdy = up(dy), gw = up(w), gb = up(b);
      Tensor gy = Tensor::empty({n}, Device::CUDA), gmean = Tensor::empty({2 * k.N * k.G}, Device::CUDA);
      Tensor grstd = Tensor::empty({k.N * k.G}, Device::CUDA), gwork = Tensor::empty({2 * k.N * k.C}, Device::CUDA);
      Tensor gdx = Tensor::zeros({n}, Device::CUDA), gdw = Tensor::zeros({k.C}, Device::CUDA);
      Tensor gdb = Tensor::zeros({k.C}, Device::CUDA);
      auto gfwd = [&] {
        gt::group_norm_forward_cuda(gy.data(), gmean.data(), grstd.data(), gx.data(), gw.data(), gb.data(), k.N, k.C,
                                    S, k.G, kEps);
      };
      auto gbwd = [&] {
        gt::group_norm_backward_cuda(gdx.data(), gdw.data(), gdb.data(), gwork.data(), gdy.data(), gx.data(),
                                     gmean.data(), grstd.data(), gw.data(), k.N, k.C, S, k.G);
      };
      gfwd();
      gbwd();
      gt::bench::check_close(name + " fwd cuda vs double", gy.to_vector(), ry, kAtol, kRtol);
      gt::bench::check_close(name + " dx cuda vs double", gdx.to_vector(), rdx, kAtol, kRtol);
      gt::bench::check_close(name + " dweight cuda vs double", gdw.to_vector(), rdw, kAtol, kRtol);
      gt::bench::check_close(name + " dbias cuda vs double", gdb.to_vector(), rdb, kAtol, kRtol);
      t = gt::bench::time_fn(Device::CUDA, gfwd, opt);
      gt::bench::report_gbs(name + " fwd", Device::CUDA, t, 2.0 * 4 * n);
      t = gt::bench::time_fn(Device::CUDA, gbwd, opt);
      gt::bench::report_gbs(name + " bwd", Device::CUDA, t, 4.0 * 4 * n);
      t = gt::bench::time_fn(Device::CUDA, [&] { gfwd(); gbwd(); }, opt);
      gt::bench::report_gbs(name + " fwd+bwd", Device::CUDA, t, 6.0 * 4 * n);
    }
#endif
  }
  if (!cuda) std::printf("cuda: skipped (%s)\n", gt::cuda_unavailable_reason().c_str());
  return 0;
}
