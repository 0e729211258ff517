// bench_unet.cpp: the DDPM U-Net (models/unet.h) — one training step, the number to put next to
// benchmarks/reference/ddpm_torch.py --bench-train, and where its time goes; and ancestral sampling
// (--sample), the number to put next to ddpm_torch.py --bench-sample.
//
// Cases (default: the benchmark network, channels 32, batch 64, 28x28, 2 threads):
//   forward            ε̂ = unet(x_t, t), no tape (what one sampling step costs at this batch)
//   forward+backward   loss = mean((ε̂ − ε)²), backward(loss)
//   train step         forward+backward + Adam (lr 2e-4) + zero_grad: the figure to compare with
//                      ddpm_torch.py --bench-train --no-ema (which also draws t, ε and x_t: <1% there)
//   --train-only       the train step alone (what benchmarks/compare_ddpm.sh runs)
//   --layers           every convolution of the net alone, forward and forward+backward, at its
//                      shape in the net (conv2d: Winograd, direct 3x3 or im2col + GEMM, kernels/conv.cpp), summed
//                      and set against the step: how much of the step is convolution
//   --sample           instead of all the above: gt::ddpm_sample (models/ddpm.h, what `gentape sample`
//                      runs) drawing --n 16 images in one batch with S = --sample-steps 1000 ancestral
//                      steps, x_{t−1} = (1/√α_t)(x_t − (β_t/√(1−ᾱ_t)) ε̂) + σ_t z, σ_t² = β_t, the
//                      linear β schedule over S steps (1e-4 .. 0.02), no tape, the randomly
//                      initialised default U-Net in evaluation mode: ddpm_torch.py --bench-sample's
//                      setup. The wall time of the whole loop (x_T's draw included, ~12k normals)
//                      and per step, and process CPU time / wall time.
// FLOPs: convolutions only (2·B·O·Ho·Wo·C·k² per conv forward; backward = dW + dX = 2x forward,
// except conv_in, whose input needs no gradient); GroupNorm, SiLU, adds and Adam are <1% in FLOPs.
//
// Check first: the whole batch's forward equals the forward of its first image alone (GroupNorm
// and convolutions are per sample, so batching must not change a value beyond summation order),
// and the step's loss is finite; with --sample, every sampled pixel is finite.
//
// Each mode ends with one JSON line on stdout (the line starting with '{'), with ddpm_torch.py's
// field names: train step {"mode": "bench-train", "median_step_s", "min_step_s", "max_step_s",
// "median_step_cpu_s", "cpu_per_wall", "last_loss", ...}; --sample {"mode": "bench-sample",
// "total_s", "per_step_s", "cpu_per_wall", "sample_mean", "sample_std", ...}; both add "conv_gflop" (the
// direct algorithm's FLOP count) and "conv_gflop_computed" (with the Winograd layers' real count)
// (the convolutions' FLOPs of one train step / of the whole sampling loop). The weights are random
// in both engines but not the same numbers, so the losses and sample statistics are not comparable
// across engines, only the times.
//
//   bench_unet [reps=10] [warmup=2] [--threads 2] [--batch 64] [--channels 32] [--attention] [--seed 1]
//              [--train-only | --layers]
//   bench_unet --sample [--n 16] [--sample-steps 1000] [--threads 2] [--channels 32] [--seed 1]
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
#include "kernels/winograd.h"
#include "models/ddpm.h"
#include "models/diffusion.h"
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
  bool attention = false, layers = false, train_only = false;
  bool sample = false;
  int64_t n = 16, sample_steps = 1000;  // --sample: images, and S = the schedule's T
  uint64_t seed = 1;                    // weights from Generator(seed), data and noise from seed + 1
  std::vector<char*> positional;
};

Args parse_args(int argc, char** argv) {
  Args a;
  a.positional.push_back(argv[0]);
  auto value = [&](int& i, long min = 1) -> long {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]);
      std::exit(2);
    }
    char* end = nullptr;
    long v = std::strtol(argv[++i], &end, 10);
    if (end == argv[i] || *end != '\0' || v < min) {
      std::fprintf(stderr, "%s: %s must be an integer >= %ld, got '%s'\n", argv[0], argv[i - 1], min, argv[i]);
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
    else if (!std::strcmp(argv[i], "--train-only")) a.train_only = true;
    else if (!std::strcmp(argv[i], "--sample")) a.sample = true;
    else if (!std::strcmp(argv[i], "--n")) a.n = value(i);
    else if (!std::strcmp(argv[i], "--sample-steps")) a.sample_steps = value(i, 2);  // the schedule needs T >= 2
    else if (!std::strcmp(argv[i], "--seed")) a.seed = (uint64_t)value(i, 0);
    else a.positional.push_back(argv[i]);
  }
  if (a.sample && (a.layers || a.train_only)) {
    std::fprintf(stderr, "%s: --sample times the sampler alone: drop --layers / --train-only\n", argv[0]);
    std::exit(2);
  }
  if (a.layers && a.train_only) {
    std::fprintf(stderr, "%s: --layers sets each convolution against the forward and the step: drop --train-only\n",
                 argv[0]);
    std::exit(2);
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

// The FLOPs the convolution's multiply-adds actually take with the algorithm conv2d picks: for the
// Winograd layers (kernels/winograd.h) 36 C O multiply-adds per 4x4 output tile, over the tiles of
// conv3x3_winograd_tiling (4x fewer than the direct count at 28x28, 3.5x at 14x14 with the batch of
// 64); the direct count for the others. The input and weight gradients take the same count as the
// forward.
double conv_forward_flops_computed(const ConvShape& c, int64_t B) {
  if (c.k == 3 && c.stride == 1 && gt::conv3x3_winograd_applies(c.cin, c.cout)) {
    const int64_t tiles = gt::conv3x3_winograd_tiling(B, c.hw, c.hw).tiles;
    return 2.0 * tiles * gt::kWinogradPoints * c.cin * c.cout;
  }
  return conv_forward_flops(c, B);
}

// Process CPU time (user + system, all threads) in seconds.
double cpu_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return (double)r.ru_utime.tv_sec + 1e-6 * (double)r.ru_utime.tv_usec + (double)r.ru_stime.tv_sec +
         1e-6 * (double)r.ru_stime.tv_usec;
}

double median(std::vector<double> v) {  // Python's statistics.median: the mean of the middle two if even
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::string json_bool(bool b) { return b ? "true" : "false"; }

// The keys ddpm_torch.py prints with every result (its "torch" key becomes "engine").
std::string json_config(const gt::UNet& unet) {
  const gt::UNetConfig& c = unet.config();
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\"engine\": \"gentape\", \"channels\": %lld, \"groups\": %d, \"attention\": %s, "
                "\"num_classes\": %d, \"params\": %lld, \"threads\": %d",
                (long long)c.channels, c.groups, json_bool(c.attention).c_str(), c.num_classes,
                (long long)unet.num_parameters(), gt::num_threads());
  return buf;
}

// A timed case: median and min wall time (as gt::bench::time_fn on the CPU: opt.warmup untimed runs,
// then opt.reps runs each timed alone with steady_clock), the max, the median process CPU time (user
// + system, all threads) per run and cpu/wall summed over the timed runs (ddpm_torch.py's
// definitions). cpu/wall well below the thread count means the threads were not all running (a
// loaded machine), so the wall time overstates the cost; with 1 thread the CPU time is the steadier
// figure.
struct Timed {
  gt::bench::Timing t;
  double max_ms = 0, median_cpu_ms = 0, cpu_per_wall = 0;
};

Timed timed(const char* what, const std::function<void()>& fn, const gt::bench::Options& opt) {
  for (int i = 0; i < opt.warmup; ++i) fn();
  std::vector<double> wall_ms, cpu_ms;
  for (int i = 0; i < opt.reps; ++i) {
    const double c0 = cpu_seconds();
    const auto w0 = std::chrono::steady_clock::now();
    fn();
    wall_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count());
    cpu_ms.push_back(1e3 * (cpu_seconds() - c0));
  }
  Timed r;
  r.t.reps = opt.reps;
  r.t.median_ms = median(wall_ms);
  r.t.min_ms = *std::min_element(wall_ms.begin(), wall_ms.end());
  r.max_ms = *std::max_element(wall_ms.begin(), wall_ms.end());
  r.median_cpu_ms = median(cpu_ms);
  double cpu = 0, wall = 0;
  for (size_t i = 0; i < wall_ms.size(); ++i) {
    cpu += cpu_ms[i];
    wall += wall_ms[i];
  }
  r.cpu_per_wall = cpu / wall;
  std::printf("  %s: cpu %.1f ms per run (median), cpu/wall %.2f of %d threads (timed runs)\n", what,
              r.median_cpu_ms, r.cpu_per_wall, gt::num_threads());
  return r;
}

// --sample: ddpm_torch.py --bench-sample with gentape's sampler. Returns the exit status.
int bench_sample(const Args& args) {
  const int64_t H = 28;
  gt::UNetConfig cfg;
  cfg.channels = args.channels;
  cfg.attention = args.attention;
  gt::Generator init(args.seed), gen(args.seed + 1);
  gt::UNet unet(cfg, init);
  unet.train(false);  // model.eval(): nothing in the U-Net depends on it today
  gt::diffusion::ScheduleConfig sc;  // linear β 1e-4 .. 0.02, VP, σ_t² = β_t
  sc.T = args.sample_steps;
  gt::diffusion::Schedule sched(sc, Device::CPU);
  gt::SampleOptions so;
  so.n = args.n;
  so.batch = args.n;  // one batch of n, as ddpm_torch.py
  so.sampler = "ddpm";
  std::printf("U-Net: channels %lld, groups %d, attention %s, %lld parameters; sampling %lld images of 1x%lldx%lld, "
              "%lld ancestral steps (linear beta, sigma_t^2 = beta_t), %d threads\n",
              (long long)cfg.channels, cfg.groups, cfg.attention ? "on" : "off", (long long)unet.num_parameters(),
              (long long)args.n, (long long)H, (long long)H, (long long)args.sample_steps, gt::num_threads());
  double conv_flops_step = 0, conv_flops_computed = 0;  // one forward at batch n
  for (const ConvShape& c : conv_shapes(unet, H)) {
    conv_flops_step += conv_forward_flops(c, args.n);
    conv_flops_computed += conv_forward_flops_computed(c, args.n);
  }

  const double c0 = cpu_seconds();
  const auto w0 = std::chrono::steady_clock::now();
  Tensor imgs = gt::ddpm_sample(unet, sched, H, H, so, gen);
  const std::vector<float> v = imgs.to_vector();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  const double cpu = cpu_seconds() - c0;

  double sum = 0, sq = 0;
  bool finite = true;
  for (float p : v) {
    finite = finite && std::isfinite(p);
    sum += p;
  }
  const double mean = sum / (double)v.size();
  for (float p : v) sq += (p - mean) * (p - mean);
  const double stdev = std::sqrt(sq / (double)(v.size() - 1));  // torch.std: unbiased
  std::printf("check samples finite: %s\n", finite ? "PASS" : "FAIL");
  if (!finite) return 1;
  const double per_step = wall / (double)args.sample_steps;
  std::printf("sample: %lld images x %lld steps: total %.3f s, %.2f ms per step (%.1f GFLOP/s in the convolutions), "
              "cpu/wall %.2f of %d threads\n",
              (long long)args.n, (long long)args.sample_steps, wall, 1e3 * per_step, conv_flops_step / per_step / 1e9,
              cpu / wall, gt::num_threads());
  std::printf("{%s, \"mode\": \"bench-sample\", \"n\": %lld, \"sample_steps\": %lld, \"total_s\": %.6f, "
              "\"per_step_s\": %.6f, \"cpu_per_wall\": %.4f, \"sample_mean\": %.6g, \"sample_std\": %.6g, "
              "\"conv_gflop\": %.3f, \"conv_gflop_computed\": %.3f, \"peak_gflops\": %.1f}\n",
              json_config(unet).c_str(), (long long)args.n, (long long)args.sample_steps, wall, per_step, cpu / wall,
              mean, stdev, conv_flops_step * (double)args.sample_steps / 1e9,
              conv_flops_computed * (double)args.sample_steps / 1e9, gt::bench::peak_gflops(Device::CPU));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse_args(argc, argv);
  gt::bench::Options opt = gt::bench::parse_options((int)args.positional.size(), args.positional.data(), 10);
  if (args.positional.size() < 3) opt.warmup = 2;  // a step is ~1 s: 2 warm-ups fill the allocator cache
  gt::set_num_threads(args.threads);
  gt::bench::print_machine(Device::CPU);
  if (args.sample) return bench_sample(args);
  std::printf("timing: median (and min) of %d repetitions after %d warm-up runs; steady_clock\n", opt.reps,
              opt.warmup);

  const int64_t B = args.batch, H = 28;
  gt::UNetConfig cfg;
  cfg.channels = args.channels;
  cfg.attention = args.attention;
  gt::Generator init(args.seed), gen(args.seed + 1);
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

  double conv_flops_fwd = 0, conv_flops_in = 0, computed_fwd = 0, computed_in = 0;
  const std::vector<ConvShape> convs = conv_shapes(unet, H);
  for (const ConvShape& c : convs) {
    conv_flops_fwd += conv_forward_flops(c, B);
    computed_fwd += conv_forward_flops_computed(c, B);
    if (c.name == "conv_in") {
      conv_flops_in = conv_forward_flops(c, B);
      computed_in = conv_forward_flops_computed(c, B);
    }
  }
  const double step_flops = 3 * conv_flops_fwd - conv_flops_in;  // conv_in needs no dX
  const double step_computed = 3 * computed_fwd - computed_in;
  std::printf("convolution FLOPs (the direct algorithm's count): forward %.2f GFLOP, forward+backward %.2f GFLOP per "
              "step; as computed (Winograd layers at 36 products per 4x4 tile): %.2f and %.2f\n",
              conv_flops_fwd / 1e9, step_flops / 1e9, computed_fwd / 1e9, step_computed / 1e9);

  // ---- time ----
  gt::bench::Timing tf;
  if (!args.train_only) {
    tf = timed("forward", [&] {
      gt::NoGradGuard ng;
      Tensor y = unet.forward(x, t);
      (void)y.data();
    }, opt).t;
    gt::bench::report_gflops("unet forward (no tape)", Device::CPU, tf, conv_flops_fwd);

    gt::bench::Timing tb = timed("forward+backward", [&] {
      Tensor loss = gt::mean(gt::square(unet.forward(x, t) - eps));
      gt::backward(loss);
      unet.zero_grad();
    }, opt).t;
    gt::bench::report_gflops("unet forward+backward", Device::CPU, tb, step_flops);
  }

  gt::optim::AdamOptions ao;
  ao.lr = 2e-4f;
  gt::optim::Adam adam(unet.named_parameters(), ao);
  float last_loss = 0;
  const Timed step = timed("train step", [&] {
    Tensor loss = gt::mean(gt::square(unet.forward(x, t) - eps));
    gt::backward(loss);
    adam.step();
    adam.zero_grad();
    last_loss = loss.item();
  }, opt);
  const gt::bench::Timing& ts = step.t;
  if (!std::isfinite(last_loss)) {
    std::printf("check train step loss: FAIL (%g)\n", last_loss);
    return 1;
  }
  gt::bench::report_gflops("unet train step (fwd+bwd+Adam)", Device::CPU, ts, step_flops);
  std::printf("train step: median %.1f ms, min %.1f ms (loss after the timed steps %.4f)\n", ts.median_ms, ts.min_ms,
              last_loss);
  std::printf("{%s, \"mode\": \"bench-train\", \"batch\": %lld, \"steps\": %d, \"warmup\": %d, "
              "\"median_step_s\": %.6f, \"min_step_s\": %.6f, \"max_step_s\": %.6f, \"median_step_cpu_s\": %.6f, "
              "\"cpu_per_wall\": %.4f, \"last_loss\": %.6g, \"data\": \"random N(0, 1), one fixed batch\", "
              "\"conv_gflop\": %.3f, \"conv_gflop_computed\": %.3f, \"peak_gflops\": %.1f}\n",
              json_config(unet).c_str(), (long long)B, opt.reps, opt.warmup, 1e-3 * ts.median_ms, 1e-3 * ts.min_ms,
              1e-3 * step.max_ms, 1e-3 * step.median_cpu_ms, step.cpu_per_wall, last_loss, step_flops / 1e9,
              step_computed / 1e9, gt::bench::peak_gflops(Device::CPU));
  std::fflush(stdout);

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
