// bench_unet.cpp: one DDPM training step of the U-Net (models/unet.h), the number to put next to
// benchmarks/reference/ddpm_torch.py --bench-train, and where its time goes.
//
// Cases (default: the benchmark network, channels 32, batch 64, 28x28, 2 threads):
//   forward            ε̂ = unet(x_t, t), no tape (what one sampling step costs at this batch)
//   forward+backward   loss = mean((ε̂ − ε)²), backward(loss)
//   train step         forward+backward + Adam (lr 2e-4) + zero_grad: the figure to compare with
//                      ddpm_torch.py --bench-train --no-ema (which also draws t, ε and x_t: <1% there)
//   --layers           every convolution of the net alone, forward and forward+backward, at its
//                      shape in the net (conv2d is im2col + Eigen GEMM, kernels/conv.cpp), summed
//                      and set against the step: how much of the step is convolution
// FLOPs: convolutions only (2·B·O·Ho·Wo·C·k² per conv forward; backward = dW + dX = 2x forward,
// except conv_in, whose input needs no gradient); GroupNorm, SiLU, adds and Adam are <1% in FLOPs.
//
// Check first: the whole batch's forward equals the forward of its first image alone (GroupNorm
// and convolutions are per sample, so batching must not change a value beyond summation order),
// and the step's loss is finite.
//
//   bench_unet [reps=10] [warmup=2] [--threads 2] [--batch 64] [--channels 32] [--attention] [--layers]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "benchmarks/harness.h"
#include "core/device.h"
#include "core/rng.h"
#include "models/optim.h"
#include "models/unet.h"

namespace {

using gt::Device;
using gt::Tensor;

// Image 0 alone vs in the batch: the same float32 math with other GEMM blockings (Eigen picks
// blocks by matrix size): a few ulps per layer through ~40 layers of O(1) values.
constexpr double kBatchAtol = 1e-4, kBatchRtol = 1e-3;

struct Args {
  int threads = 2;
  int64_t batch = 64, channels = 32;
  bool attention = false, layers = false;
  std::vector<char*> positional;
};

Args parse_args(int argc, char** argv) {
  Args a;
  a.positional.push_back(argv[0]);
  auto value = [&](int& i) -> long {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]);
      std::exit(2);
    }
    char* end = nullptr;
    long v = std::strtol(argv[++i], &end, 10);
    if (*end != '\0' || v < 1) {
      std::fprintf(stderr, "%s: %s must be a positive integer, got '%s'\n", argv[0], argv[i - 1], argv[i]);
      std::exit(2);
    }
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads")) a.threads = (int)value(i);
    else if (!std::strcmp(argv[i], "--batch")) a.batch = value(i);
    else if (!std::strcmp(argv[i], "--channels")) a.channels = value(i);
    else if (!std::strcmp(argv[i], "--attention")) a.attention = true;
    else if (!std::strcmp(argv[i], "--layers")) a.layers = true;
    else a.positional.push_back(argv[i]);
  }
  return a;
}

// A convolution of the net: name, in/out channels, kernel, stride, input resolution.
struct ConvShape {
  std::string name;
  int64_t cin, cout, k;
  int stride;
  int64_t hw;
};

// The convolutions, read off the parameter names (4-D "<module>.weight") and the resolution each
// module runs at (unet.h): the 14x14 level is down2_*, mid_* and up2_*; everything else is 28x28
// (upsample's conv runs after the nearest x2).
std::vector<ConvShape> conv_shapes(const gt::UNet& unet, int64_t H) {
  std::vector<ConvShape> out;
  for (auto& [name, w] : unet.named_parameters()) {
    if (w.dim() != 4 || name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0) continue;
    const bool low = name.rfind("down2_", 0) == 0 || name.rfind("mid_", 0) == 0 || name.rfind("up2_", 0) == 0;
    const int stride = name.rfind("downsample", 0) == 0 ? 2 : 1;
    out.push_back({name.substr(0, name.size() - 7), w.size(1), w.size(0), w.size(2), stride, low ? H / 2 : H});
  }
  return out;
}

double conv_forward_flops(const ConvShape& c, int64_t B) {
  const int64_t ho = (c.hw + 2 * (c.k / 2) - c.k) / c.stride + 1;
  return 2.0 * B * c.cout * ho * ho * c.cin * c.k * c.k;
}

// Process CPU time (user + system, all threads) in seconds.
double cpu_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return (double)r.ru_utime.tv_sec + 1e-6 * (double)r.ru_utime.tv_usec + (double)r.ru_stime.tv_sec +
         1e-6 * (double)r.ru_stime.tv_usec;
}

// time_fn, plus the process CPU time per repetition and cpu/wall over all runs (warm-ups
// included): cpu/wall well below the thread count means the threads were not all running (a loaded
// machine), so the wall time overstates the cost; with 1 thread the CPU time is the steadier figure.
gt::bench::Timing timed(const char* what, const std::function<void()>& fn, const gt::bench::Options& opt) {
  const double c0 = cpu_seconds();
  const auto w0 = std::chrono::steady_clock::now();
  gt::bench::Timing t = gt::bench::time_fn(Device::CPU, fn, opt);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  const double cpu = cpu_seconds() - c0;
  std::printf("  %s: cpu %.1f ms per run, cpu/wall %.2f of %d threads\n", what,
              1e3 * cpu / (opt.reps + opt.warmup), cpu / wall, gt::num_threads());
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse_args(argc, argv);
  gt::bench::Options opt = gt::bench::parse_options((int)args.positional.size(), args.positional.data(), 10);
  if (args.positional.size() < 3) opt.warmup = 2;  // a step is ~1 s: 2 warm-ups fill the allocator cache
  gt::set_num_threads(args.threads);
  gt::bench::print_machine(Device::CPU);
  std::printf("timing: median (and min) of %d repetitions after %d warm-up runs; steady_clock\n", opt.reps,
              opt.warmup);

  const int64_t B = args.batch, H = 28;
  gt::UNetConfig cfg;
  cfg.channels = args.channels;
  cfg.attention = args.attention;
  gt::Generator init(1), gen(2);
  gt::UNet unet(cfg, init);
  std::printf("U-Net: channels %lld, groups %d, attention %s, %lld parameters; batch %lld of 1x%lldx%lld, %d threads\n",
              (long long)cfg.channels, cfg.groups, cfg.attention ? "on" : "off", (long long)unet.num_parameters(),
              (long long)B, (long long)H, (long long)H, gt::num_threads());

  Tensor x = gen.randn({B, 1, H, H}), eps = gen.randn({B, 1, H, H});
  std::vector<float> tv((size_t)B);
  for (int64_t i = 0; i < B; ++i) tv[(size_t)i] = (float)(1 + (i * 397) % 1000);
  Tensor t = Tensor::from_vector(tv, {B});

  // ---- check ----
  {
    gt::NoGradGuard ng;
    std::vector<float> all = unet.forward(x, t).to_vector();
    Tensor x0 = gt::slice(x, 0, 0, 1), t0 = gt::slice(t, 0, 0, 1);
    std::vector<float> one = unet.forward(x0, t0).to_vector();
    std::vector<float> first(all.begin(), all.begin() + (long)one.size());
    gt::bench::check_close("image 0 alone vs in the batch", first, one, kBatchAtol, kBatchRtol);
  }

  double conv_flops_fwd = 0, conv_flops_in = 0;
  const std::vector<ConvShape> convs = conv_shapes(unet, H);
  for (const ConvShape& c : convs) {
    conv_flops_fwd += conv_forward_flops(c, B);
    if (c.name == "conv_in") conv_flops_in = conv_forward_flops(c, B);
  }
  const double step_flops = 3 * conv_flops_fwd - conv_flops_in;  // conv_in needs no dX
  std::printf("convolution FLOPs: forward %.2f GFLOP, forward+backward %.2f GFLOP per step\n", conv_flops_fwd / 1e9,
              step_flops / 1e9);

  // ---- time ----
  gt::bench::Timing tf = timed("forward", [&] {
    gt::NoGradGuard ng;
    Tensor y = unet.forward(x, t);
    (void)y.data();
  }, opt);
  gt::bench::report_gflops("unet forward (no tape)", Device::CPU, tf, conv_flops_fwd);

  gt::bench::Timing tb = timed("forward+backward", [&] {
    Tensor loss = gt::mean(gt::square(unet.forward(x, t) - eps));
    gt::backward(loss);
    unet.zero_grad();
  }, opt);
  gt::bench::report_gflops("unet forward+backward", Device::CPU, tb, step_flops);

  gt::optim::AdamOptions ao;
  ao.lr = 2e-4f;
  gt::optim::Adam adam(unet.named_parameters(), ao);
  float last_loss = 0;
  gt::bench::Timing ts = timed("train step", [&] {
    Tensor loss = gt::mean(gt::square(unet.forward(x, t) - eps));
    gt::backward(loss);
    adam.step();
    adam.zero_grad();
    last_loss = loss.item();
  }, opt);
  if (!std::isfinite(last_loss)) {
    std::printf("check train step loss: FAIL (%g)\n", last_loss);
    return 1;
  }
  gt::bench::report_gflops("unet train step (fwd+bwd+Adam)", Device::CPU, ts, step_flops);
  std::printf("train step: median %.1f ms, min %.1f ms (loss after the timed steps %.4f)\n", ts.median_ms, ts.min_ms,
              last_loss);

  if (!args.layers) return 0;

  // ---- every convolution alone ----
  std::printf("\nconvolutions alone at their shapes in the net (batch %lld):\n", (long long)B);
  std::printf("  %-22s %-22s %9s %11s %9s\n", "conv", "shape", "fwd ms", "fwd+bwd ms", "GFLOP/s");
  double sum_fwd = 0, sum_step = 0;
  gt::bench::Options lopt = opt;
  lopt.reps = std::max(3, opt.reps);
  for (const ConvShape& c : convs) {
    Tensor xin = gen.randn({B, c.cin, c.hw, c.hw});
    if (c.name != "conv_in") xin.set_requires_grad(true);
    Tensor w = gen.randn({c.cout, c.cin, c.k, c.k}).set_requires_grad(true);
    Tensor bias = gen.randn({c.cout}).set_requires_grad(true);
    const int pad = (int)(c.k / 2);
    gt::bench::Timing f = gt::bench::time_fn(Device::CPU, [&] {
      gt::NoGradGuard ng;
      Tensor y = gt::conv2d(xin, w, bias, c.stride, pad);
      (void)y.data();
    }, lopt);
    gt::bench::Timing fb = gt::bench::time_fn(Device::CPU, [&] {
      gt::backward(gt::sum(gt::conv2d(xin, w, bias, c.stride, pad)));
      w.zero_grad();
      bias.zero_grad();
      if (xin.requires_grad()) xin.zero_grad();
    }, lopt);
    const double fl = conv_forward_flops(c, B) * (c.name == "conv_in" ? 2 : 3);
    char shape[64];
    std::snprintf(shape, sizeof shape, "%lld->%lld k%lld/s%d @%lldx%lld", (long long)c.cin, (long long)c.cout,
                  (long long)c.k, c.stride, (long long)c.hw, (long long)c.hw);
    std::printf("  %-22s %-22s %9.2f %11.2f %9.1f\n", c.name.c_str(), shape, f.median_ms, fb.median_ms,
                fl / (fb.median_ms * 1e-3) / 1e9);
    sum_fwd += f.median_ms;
    sum_step += fb.median_ms;
  }
  std::printf("  sum of the convolutions: forward %.1f ms (%.0f%% of the net's forward), forward+backward %.1f ms "
              "(%.0f%% of the train step)\n",
              sum_fwd, 100 * sum_fwd / tf.median_ms, sum_step, 100 * sum_step / ts.median_ms);
  return 0;
}
