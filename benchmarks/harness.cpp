// harness.cpp: checking, timing, peaks and reporting for the kernel benchmarks (see harness.h).
#include "benchmarks/harness.h"

#include <algorithm>
#include <chrono>
#include <immintrin.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/parallel.h"

#if GENTAPE_HAS_CUDA
#include <cuda_runtime.h>

#include "core/cuda_context.h"

#define BENCH_CUDA_CHECK(call)                                                               \
  do {                                                                                       \
    cudaError_t e_ = (call);                                                                 \
    GT_CHECK(e_ == cudaSuccess, "CUDA error in " << #call << ": " << cudaGetErrorString(e_)); \
  } while (0)
#endif

namespace gt::bench {

namespace {

// The value of the first "key : value" line of /proc/cpuinfo whose key is `key` ("" if none).
std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon);
    k.erase(k.find_last_not_of(" \t") + 1);
    if (k != key) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    return v;
  }
  return "";
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The CPU's copy bandwidth: the better of two copies of 128 MiB (four times this project's VM's
// 32 MiB L3, so they stream from DRAM), each split over gt::num_threads() threads and timed 10
// times, best run kept (a peak is the best the machine does, not its typical run):
//   memcpy     glibc's, which at this size uses non-temporal stores (no write-allocate read)
//   copy loop  STREAM's Copy, dst[i] = src[i] with ordinary stores (the kernels' kind of store)
// Bytes counted as STREAM does: 2 x 4 N per copy, write-allocate traffic not counted.
struct CpuCopy {
  double memcpy_gbs = 0, loop_gbs = 0;
};
CpuCopy cpu_copy_bandwidth() {
  const int64_t n = (int64_t(128) << 20) / 4;
  std::vector<float> src(n), dst(n);
  // First touch in parallel so pages land near the threads that copy them.
  gt::parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      src[i] = 1.0f;
      dst[i] = 0.0f;
    }
  });
  auto best_gbs = [&](const std::function<void(int64_t, int64_t)>& body) {
    double best = 1e30;
    for (int r = 0; r < 11; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      gt::parallel_for(n, 1 << 16, body);
      auto t1 = std::chrono::steady_clock::now();
      if (r > 0) best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
    }
    return 2.0 * 4.0 * (double)n / best / 1e9;
  };
  CpuCopy c;
  c.memcpy_gbs = best_gbs([&](int64_t b, int64_t e) {
    std::memcpy(dst.data() + b, src.data() + b, (size_t)(e - b) * sizeof(float));
  });
  c.loop_gbs = best_gbs([&](int64_t b, int64_t e) {
    float* __restrict d = dst.data();
    const float* __restrict s = src.data();
    for (int64_t i = b; i < e; ++i) d[i] = s[i];
  });
  return c;
}
const CpuCopy& cpu_copy() {
  static CpuCopy c = cpu_copy_bandwidth();
  return c;
}

#if GENTAPE_HAS_CUDA
double cuda_copy_bandwidth() {
  const size_t bytes = size_t(256) << 20;
  const int64_t n = (int64_t)(bytes / sizeof(float));
  Tensor a = Tensor::zeros({n}, Device::CUDA), b = Tensor::zeros({n}, Device::CUDA);
  Options opt;
  opt.warmup = 2;
  opt.reps = 10;
  Timing t = time_fn(Device::CUDA, [&] {
    BENCH_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, gt::cuda::stream()));
  }, opt);
  return 2.0 * (double)bytes / (t.min_ms * 1e-3) / 1e9;
}

struct CudaPeak {
  int sms = 0;
  int lanes = 0;
  double ghz = 0;
  double gflops = 0;
};
CudaPeak cuda_peak() {
  int dev = 0, sms = 0, khz = 0, major = 0, minor = 0;
  BENCH_CUDA_CHECK(cudaGetDevice(&dev));
  BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev));
  BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  CudaPeak p;
  p.sms = sms;
  // FP32 lanes per SM (CUDA programming guide, "arithmetic instructions" throughput table):
  // 64 on sm_60/70/75/80, 128 on sm_61, sm_86/87/89, sm_90 and later.
  p.lanes = (major == 6 && minor == 1) || (major == 8 && minor >= 6) || major >= 9 ? 128 : 64;
  p.ghz = khz * 1e-6;
  p.gflops = sms * p.lanes * p.ghz * 2.0;
  return p;
}
#endif

}  // namespace

Options parse_options(int argc, char** argv, int default_reps) {
  Options o;
  o.reps = default_reps;
  auto parse = [&](int i, int* out, const char* what) {
    char* end = nullptr;
    long v = std::strtol(argv[i], &end, 10);
    if (end == argv[i] || *end != '\0' || v < (i == 1 ? 1 : 0) || v > 1000000) {
      std::fprintf(stderr, "usage: %s [reps>=1] [warmup>=0]  (bad %s '%s')\n", argv[0], what, argv[i]);
      std::exit(2);
    }
    *out = (int)v;
  };
  if (argc > 1) parse(1, &o.reps, "reps");
  if (argc > 2) parse(2, &o.warmup, "warmup");
  return o;
}

std::string cpu_model_name() {
  std::string m = cpuinfo_field("model name");
  return m.empty() ? "unknown CPU" : m;
}

namespace {
// Every thread runs 24 independent chains of vector FMAs (no memory traffic) for a fixed count;
// GFLOP/s of all threads together, best of 5 runs. 0 when the build has no FMA instructions.
double measure_fma_gflops(int threads) {
#if defined(__AVX512F__) || defined(__FMA__)
#if defined(__AVX512F__)
  using V = __m512;
  constexpr int kLanes = 16;
  auto set1 = [](float x) { return _mm512_set1_ps(x); };
  auto fma = [](V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); };
#else
  using V = __m256;
  constexpr int kLanes = 8;
  auto set1 = [](float x) { return _mm256_set1_ps(x); };
  auto fma = [](V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); };
#endif
  auto sum = [](V a) {  // the lanes' total, only to keep the chains alive
    float f[kLanes];
    std::memcpy(f, &a, sizeof f);
    float t = 0;
    for (float x : f) t += x;
    return t;
  };
  constexpr int kChains = 24;
  const int64_t iters = 1 << 20;
  double best = 1e30;
  float sink = 0;
  for (int r = 0; r < 5; ++r) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      V a[kChains];
      for (int i = 0; i < kChains; ++i) a[i] = set1(1.0f + 1e-3f * (float)i);
      const V b = set1(0.9999f), c = set1(1e-4f);
      for (int64_t n = 0; n < iters; ++n) {
#pragma GCC unroll 24
        for (int i = 0; i < kChains; ++i) a[i] = fma(a[i], b, c);
      }
      for (int i = 0; i < kChains; ++i) sink += sum(a[i]);
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (sink == 12345.f) std::printf(" ");  // keeps the chains alive
  return (double)threads * (double)iters * kChains * kLanes * 2.0 / best / 1e9;
#else
  (void)threads;
  return 0.0;
#endif
}
}  // namespace

CpuPeak cpu_peak() {
  CpuPeak p;
  p.cores = gt::num_threads();
  std::string mhz = cpuinfo_field("cpu MHz");
  p.ghz = mhz.empty() ? 0.0 : std::atof(mhz.c_str()) / 1000.0;
  std::string flags = " " + cpuinfo_field("flags") + " ";
  p.avx512 = flags.find(" avx512f ") != std::string::npos;
  // 2 FMA units x lanes (8 fp32 for 256-bit, 16 for 512-bit) x 2 FLOP per FMA. Without AVX2+FMA
  // the 32 is an overestimate, which print_machine says.
  p.flops_per_cycle = p.avx512 ? 64 : 32;
  p.nominal_gflops = p.cores * p.ghz * p.flops_per_cycle;
  p.measured_gflops = measure_fma_gflops(p.cores);
  p.gflops = p.measured_gflops > 0 ? p.measured_gflops : p.nominal_gflops;
  return p;
}

double copy_bandwidth_gbs(Device dev) {
#if GENTAPE_HAS_CUDA
  if (dev == Device::CUDA) {
    static double cuda_bw = cuda_copy_bandwidth();
    return cuda_bw;
  }
#endif
  GT_CHECK(dev == Device::CPU, "copy_bandwidth_gbs: CUDA requested but " << cuda_unavailable_reason());
  return std::max(cpu_copy().memcpy_gbs, cpu_copy().loop_gbs);
}

double peak_gflops(Device dev) {
#if GENTAPE_HAS_CUDA
  if (dev == Device::CUDA) {
    static double g = cuda_peak().gflops;
    return g;
  }
#endif
  GT_CHECK(dev == Device::CPU, "peak_gflops: CUDA requested but " << cuda_unavailable_reason());
  static double g = cpu_peak().gflops;
  return g;
}

void print_machine(Device dev) {
  if (dev == Device::CPU) {
    CpuPeak p = cpu_peak();
    std::string flags = " " + cpuinfo_field("flags") + " ";
    const bool fma = flags.find(" avx2 ") != std::string::npos && flags.find(" fma ") != std::string::npos;
    std::printf("device: cpu \"%s\", %d threads (gt::num_threads)\n", cpu_model_name().c_str(), p.cores);
    std::printf(
        "nominal cpu fp32 peak: %d cores x %.3f GHz (/proc/cpuinfo \"cpu MHz\") x %d FLOP/cycle (%s) = %.1f GFLOP/s\n",
        p.cores, p.ghz, p.flops_per_cycle,
        p.avx512 ? "AVX-512: 2 FMA units x 16 lanes x 2" : (fma ? "AVX2+FMA: 2 FMA units x 8 lanes x 2"
                                                                 : "AVX2+FMA assumed but not in the flags"),
        p.nominal_gflops);
    if (p.measured_gflops > 0)
      std::printf("measured cpu fp32 peak: %.1f GFLOP/s (%d threads, 24 independent chains of %s FMAs each, best of "
                  "5; the cores run above the nominal clock); %% of peak below is of this\n",
                  p.measured_gflops, p.cores, p.avx512 ? "512-bit" : "256-bit");
    else
      std::printf("no FMA instructions in this build: %% of peak below is of the nominal figure\n");
    std::printf("measured cpu copy bandwidth: %.1f GB/s = best of memcpy %.1f GB/s and a copy loop %.1f GB/s "
                "(128 MiB, %d threads, best of 10 runs, 2 x bytes counted as STREAM does); "
                "GB/s fractions below are of this measured copy\n",
                copy_bandwidth_gbs(Device::CPU), cpu_copy().memcpy_gbs, cpu_copy().loop_gbs, p.cores);
    return;
  }
#if GENTAPE_HAS_CUDA
  GT_CHECK(cuda_available(), "print_machine: " << cuda_unavailable_reason());
  CudaPeak p = cuda_peak();
  std::printf("device: cuda \"%s\"\n", cuda_device_name().c_str());
  std::printf("assumed cuda fp32 peak: %d SMs x %d FP32 lanes x %.3f GHz (cudaDevAttrClockRate) x 2 = %.1f GFLOP/s\n",
              p.sms, p.lanes, p.ghz, p.gflops);
  std::printf("measured cuda copy bandwidth: %.1f GB/s (256 MiB device-to-device cudaMemcpyAsync, read+write bytes); "
              "GB/s fractions below are of this measured copy\n",
              copy_bandwidth_gbs(Device::CUDA));
#else
  GT_FAIL("print_machine: CUDA requested but " << cuda_unavailable_reason());
#endif
}

void check_close(const std::string& what, const float* got, const double* ref, int64_t n, double atol,
                 double rtol) {
  double max_abs = 0, max_rel = 0, worst_ratio = 0;
  int64_t worst = -1;
  for (int64_t i = 0; i < n; ++i) {
    double e = std::fabs((double)got[i] - ref[i]);
    if (!(e == e)) e = INFINITY;  // NaN fails
    max_abs = std::max(max_abs, e);
    if (ref[i] != 0) max_rel = std::max(max_rel, e / std::fabs(ref[i]));
    double ratio = e / (atol + rtol * std::fabs(ref[i]));
    if (worst < 0 || ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  const bool ok = n > 0 && worst_ratio <= 1.0;
  std::printf("check %-44s %s  max abs %.2e  max rel %.2e  (atol %.0e rtol %.0e, n=%lld)\n", what.c_str(),
              ok ? "PASS" : "FAIL", max_abs, max_rel, atol, rtol, (long long)n);
  if (!ok) {
    if (worst >= 0)
      std::printf("  worst element %lld: got %.9g want %.9g\n", (long long)worst, (double)got[worst], ref[worst]);
    std::fflush(stdout);
    std::exit(1);
  }
}

void check_close(const std::string& what, const std::vector<float>& got, const std::vector<double>& ref,
                 double atol, double rtol) {
  if (got.size() != ref.size()) {
    std::printf("check %-44s FAIL  size %zu vs reference %zu\n", what.c_str(), got.size(), ref.size());
    std::exit(1);
  }
  check_close(what, got.data(), ref.data(), (int64_t)got.size(), atol, rtol);
}

void check_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref,
                 double atol, double rtol) {
  check_close(what, got, std::vector<double>(ref.begin(), ref.end()), atol, rtol);
}

Timing time_fn(Device dev, const std::function<void()>& fn, const Options& opt) {
  std::vector<double> ms;
  ms.reserve(opt.reps);
  if (dev == Device::CPU) {
    for (int i = 0; i < opt.warmup; ++i) fn();
    for (int i = 0; i < opt.reps; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      fn();
      auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
  } else {
#if GENTAPE_HAS_CUDA
    GT_CHECK(cuda_available(), "time_fn: " << cuda_unavailable_reason());
    cudaStream_t s = gt::cuda::stream();
    for (int i = 0; i < opt.warmup; ++i) fn();
    BENCH_CUDA_CHECK(cudaStreamSynchronize(s));
    cudaEvent_t start, stop;
    BENCH_CUDA_CHECK(cudaEventCreate(&start));
    BENCH_CUDA_CHECK(cudaEventCreate(&stop));
    for (int i = 0; i < opt.reps; ++i) {
      BENCH_CUDA_CHECK(cudaEventRecord(start, s));
      fn();
      BENCH_CUDA_CHECK(cudaEventRecord(stop, s));
      BENCH_CUDA_CHECK(cudaEventSynchronize(stop));
      float t = 0;
      BENCH_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
      ms.push_back(t);
    }
    BENCH_CUDA_CHECK(cudaEventDestroy(start));
    BENCH_CUDA_CHECK(cudaEventDestroy(stop));
#else
    GT_FAIL("time_fn: CUDA requested but " << cuda_unavailable_reason());
#endif
  }
  Timing t;
  t.reps = opt.reps;
  t.median_ms = median_of(ms);
  t.min_ms = ms.empty() ? 0 : *std::min_element(ms.begin(), ms.end());
  return t;
}

void report_gflops(const std::string& name, Device dev, const Timing& t, double flops) {
  double g = flops / (t.median_ms * 1e-3) / 1e9, peak = peak_gflops(dev);
  std::printf("%-44s %-4s median %9.3f ms  min %9.3f ms  %8.1f GFLOP/s  %5.1f%% of peak %.0f GFLOP/s\n",
              name.c_str(), device_name(dev), t.median_ms, t.min_ms, g, 100.0 * g / peak, peak);
  std::fflush(stdout);
}

void report_gbs(const std::string& name, Device dev, const Timing& t, double bytes) {
  double g = bytes / (t.median_ms * 1e-3) / 1e9, peak = copy_bandwidth_gbs(dev);
  std::printf("%-44s %-4s median %9.3f ms  min %9.3f ms  %8.1f GB/s     %5.1f%% of copy %.1f GB/s\n",
              name.c_str(), device_name(dev), t.median_ms, t.min_ms, g, 100.0 * g / peak, peak);
  std::fflush(stdout);
}

std::vector<float> random_uniform(int64_t n, float lo, float hi, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> v = gen.rand({n}).to_vector();  // (0, 1]
  for (float& x : v) x = lo + (hi - lo) * (1.0f - x);  // [0, 1) -> [lo, hi)
  return v;
}

}  // namespace gt::bench
