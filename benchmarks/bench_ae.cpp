// bench_ae.cpp: the autoencoder benchmark of issue 4 — gentape's side of benchmarks/compare_ae.sh.
//
// Trains models/ae.h's default Autoencoder (784-512-256-2 / 2-256-512-784, ReLU, linear output,
// L = mean_b sum_j (x^_bj - x_bj)^2) with Adam (lr 1e-3) on the first 1,000 Fashion-MNIST training
// images, batch 128 reshuffled every epoch (last partial batch kept: 8 steps per epoch), 50 epochs
// — exactly what benchmarks/reference/ae_torch.py does in PyTorch — and prints the same JSON line:
//   {"engine": "gentape", "seconds": total training time, "final_loss": mean per-image loss over the
//    last epoch, "epoch1_seconds", "steady_epoch_seconds" (median of epochs 2..E), "cpu_seconds",
//    "minor_faults", "steps", "images", "epochs", "threads", "gflop": GEMM work done}
// The time is the training loop only (data are loaded and the model built before it). The loss is
// read back every step (loss.item()), as the reference does.
//
// FLOPs per image (a Linear in -> out is in*out multiply-adds per GEMM): forward 1,065,984 MACs,
// backward dW the same, backward dX 664,576 (every layer but enc1: the pixels need no gradient)
// -> 2,796,544 MACs = 5.593 MFLOP per image, 0.716 GFLOP per full step of 128.
//
//   bench_ae [--epochs 50] [--threads T] [--seed 1] [--train-limit 1000] [--batch 128] [--lr 1e-3]
//            [--data fashion-mnist|DIR]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "benchmarks/harness.h"
#include "core/device.h"
#include "models/ae.h"
#include "models/data.h"
#include "models/optim.h"
#include "tools/io/datasets.h"

using namespace gt;

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int64_t epochs = 50, limit = 1000, batch = 128;
  int threads = 0;  // 0: leave OpenMP's default
  uint64_t seed = 1;
  float lr = 1e-3f;
  std::string data = "fashion-mnist";
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_ae: %s\nusage: bench_ae [--epochs 50] [--threads T] [--seed 1] [--train-limit 1000] [--batch 128] "
               "[--lr 1e-3] [--data fashion-mnist|DIR]\n",
               why);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") usage("the issue-4 AE benchmark (see benchmarks/compare_ae.sh)");
    if (i + 1 >= argc) usage(("option " + k + " needs a value").c_str());
    const char* v = argv[++i];
    char* end = nullptr;
    if (k == "--data") {
      a.data = v;
      continue;
    }
    const double x = std::strtod(v, &end);
    if (end == v || *end) usage((k + ": '" + v + "' is not a number").c_str());
    if (k == "--epochs") a.epochs = (int64_t)x;
    else if (k == "--threads") a.threads = (int)x;
    else if (k == "--seed") a.seed = (uint64_t)x;
    else if (k == "--train-limit") a.limit = (int64_t)x;
    else if (k == "--batch") a.batch = (int64_t)x;
    else if (k == "--lr") a.lr = (float)x;
    else usage(("unknown option " + k).c_str());
  }
  if (a.epochs < 1 || a.limit < 1 || a.batch < 1 || a.threads < 0 || !(a.lr > 0)) usage("values must be positive");
  return a;
}

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

long minor_faults() {
  rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

// GEMM multiply-adds per image of one training step: forward + dW for every Linear, dX for every
// Linear but the first (its input, the pixels, needs no gradient).
double macs_per_image(const AeConfig& c) {
  std::vector<int64_t> widths = {c.input_dim()};
  for (int64_t h : c.hidden) widths.push_back(h);
  widths.push_back(c.latent);
  for (auto it = c.hidden.rbegin(); it != c.hidden.rend(); ++it) widths.push_back(*it);
  widths.push_back(c.input_dim());
  double fwd = 0, first = (double)(widths[0] * widths[1]);
  for (size_t i = 0; i + 1 < widths.size(); ++i) fwd += (double)(widths[i] * widths[i + 1]);
  return 2 * fwd + (fwd - first);
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (a.threads > 0) set_num_threads(a.threads);
  const Dataset train = io::load_dataset(a.data).train.head(a.limit);

  AeConfig cfg;  // the default: MLP 784-512-256-2, kind "ae"
  Generator init(a.seed), noise(a.seed + 1);
  Autoencoder ae(cfg, init);
  optim::AdamOptions o;
  o.lr = a.lr;
  optim::Adam opt(ae.named_parameters(), o);
  Batcher batches(train, a.batch, a.seed, Device::CPU);
  const int64_t n = train.size();
  std::fprintf(stderr,
               "bench_ae: %s, %d threads; AE 784-512-256-2-256-512-784 (%lld parameters), MSE (sum over pixels, mean over "
               "the batch), Adam lr %g, batch %lld, %lld epochs, seed %llu, first %lld images of %s\n",
               bench::cpu_model_name().c_str(), num_threads(), (long long)ae.num_parameters(), (double)a.lr,
               (long long)a.batch, (long long)a.epochs, (unsigned long long)a.seed, (long long)n, a.data.c_str());

  std::vector<double> epoch_secs;
  double last = 0;
  int64_t steps = 0;
  const long f0 = minor_faults();
  const double c0 = process_cpu_seconds();
  const auto t0 = Clock::now();
  for (int64_t epoch = 0; epoch < a.epochs; ++epoch) {
    const auto te = Clock::now();
    double sum = 0;
    for (batches.start_epoch(epoch); batches.next();) {
      AeLoss l = ae.loss(batches.x(), noise);
      backward(l.loss);
      opt.step();
      opt.zero_grad();
      sum += (double)l.loss.item() * (double)batches.x().size(0);
      ++steps;
    }
    last = sum / (double)n;
    epoch_secs.push_back(std::chrono::duration<double>(Clock::now() - te).count());
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = process_cpu_seconds() - c0;
  const long faults = minor_faults() - f0;

  std::vector<double> steady(epoch_secs.begin() + (epoch_secs.size() > 1 ? 1 : 0), epoch_secs.end());
  std::sort(steady.begin(), steady.end());
  const size_t m = steady.size();
  const double median = m % 2 ? steady[m / 2] : 0.5 * (steady[m / 2 - 1] + steady[m / 2]);
  const double gflop = 2.0 * macs_per_image(cfg) * (double)n * (double)a.epochs * 1e-9;
  const double peak = bench::cpu_peak().gflops;
  std::fprintf(stderr, "  GEMM work %.1f GFLOP in %.3f s: %.1f GFLOP/s, %.0f%% of the measured %.1f GFLOP/s peak "
                       "(the floor at peak: %.2f s)\n",
               gflop, secs, gflop / secs, 100.0 * gflop / secs / peak, peak, gflop / peak);
  std::printf("{\"engine\": \"gentape\", \"seconds\": %.6f, \"final_loss\": %.6f, \"epoch1_seconds\": %.6f, "
              "\"steady_epoch_seconds\": %.6f, \"cpu_seconds\": %.6f, \"minor_faults\": %ld, \"steps\": %lld, "
              "\"images\": %lld, \"epochs\": %lld, \"threads\": %d, \"gflop\": %.3f, \"peak_gflops\": %.1f}\n",
              secs, last, epoch_secs[0], median, cpu, faults, (long long)steps, (long long)n, (long long)a.epochs,
              num_threads(), gflop, peak);
  return 0;
}
