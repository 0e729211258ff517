// harness.h: the shared check-then-time harness of the kernel benchmarks (llm.c dev/cuda style).
//
// Every benchmark case: (1) compute a CPU reference and check the kernel's result against it
// (max abs/rel error, PASS/FAIL; a FAIL exits the process non-zero), (2) warm up, (3) time N
// repetitions and report the MEDIAN (and the min) in ms — std::chrono::steady_clock on the CPU,
// cudaEvent pairs on gt::cuda::stream() on CUDA — (4) print one line with GFLOP/s or GB/s and its
// fraction of the machine's peak:
//   - CPU FLOP peak (measured, printed): every one of gt::num_threads() threads runs 24 independent
//     chains of vector FMAs; best of 5. The nominal figure, cores x GHz x FLOP/cycle with GHz =
//     /proc/cpuinfo "cpu MHz" and FLOP/cycle = 32 (AVX2+FMA) or 64 (AVX-512), is printed next to
//     it: on this project's VM the cores run ~1.65x above the "cpu MHz" (2.1 GHz), so fractions
//     of the nominal figure (used until 2026-12-02) overstated every kernel's efficiency.
//   - CUDA FLOP peak (an assumption, printed): SMs x FP32 lanes/SM x boost clock x 2.
//   - Bandwidth: measured here with a large copy (read + write bytes counted, STREAM's convention,
//     best of 10 runs); GB/s fractions are relative to that measured copy, not to a datasheet
//     number. Arrays that fit the last-level cache can exceed 100%.
//
//   int main(int argc, char** argv) {
//     gt::bench::Options opt = gt::bench::parse_options(argc, argv);
//     gt::bench::print_machine(gt::Device::CPU);
//     gt::bench::check_close("add", got, ref);                        // exits 1 on FAIL
//     gt::bench::Timing t = gt::bench::time_fn(gt::Device::CPU, [&] { add_forward_cpu(...); }, opt);
//     gt::bench::report_gbs("add 16M", gt::Device::CPU, t, 12.0 * n);
//   }
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/device.h"

namespace gt::bench {

// Command line: `bench_x [reps] [warmup]` (defaults: the benchmark's own, 3 warm-up runs).
struct Options {
  int reps = 20;
  int warmup = 3;
};
Options parse_options(int argc, char** argv, int default_reps = 20);

// ---- the machine ----
std::string cpu_model_name();  // /proc/cpuinfo "model name"
struct CpuPeak {
  int cores = 1;
  double ghz = 0;
  int flops_per_cycle = 32;
  bool avx512 = false;
  double nominal_gflops = 0;   // cores * ghz * flops_per_cycle
  double measured_gflops = 0;  // the FMA loop (0 without FMA instructions)
  double gflops = 0;           // measured, or nominal when it could not be measured
};
CpuPeak cpu_peak();
// Copy bandwidth in GB/s (2 x bytes per copy / best time), measured once per process and cached: on
// the CPU the better of a memcpy and a plain copy loop of 128 MiB split over gt::num_threads()
// threads, on CUDA a 256 MiB device-to-device cudaMemcpyAsync. Write-allocate traffic is not
// counted (STREAM's convention), so a 3-stream kernel (add) can exceed 100% of a 2-stream copy.
double copy_bandwidth_gbs(Device dev);
// FLOP peak in GFLOP/s (CPU: cpu_peak().gflops; CUDA: SMs x lanes x clock x 2).
double peak_gflops(Device dev);
// Prints the device name, thread count and every assumed or measured peak (one block of lines).
void print_machine(Device dev);

// ---- checking ----
// |got - ref| <= atol + rtol*|ref| for every element; prints "check <what>: PASS/FAIL max abs ...
// max rel ..." and exits the process with status 1 on FAIL. Host pointers.
void check_close(const std::string& what, const float* got, const double* ref, int64_t n, double atol,
                 double rtol);
void check_close(const std::string& what, const std::vector<float>& got, const std::vector<double>& ref,
                 double atol, double rtol);
void check_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref,
                 double atol, double rtol);

// ---- timing ----
struct Timing {
  double median_ms = 0;
  double min_ms = 0;
  int reps = 0;
};
// Runs fn opt.warmup times, then opt.reps timed times (each repetition timed alone). On CUDA fn
// must only queue work on gt::cuda::stream(); the events are recorded on it.
Timing time_fn(Device dev, const std::function<void()>& fn, const Options& opt);

// ---- reporting: one line per case ----
void report_gflops(const std::string& name, Device dev, const Timing& t, double flops);
void report_gbs(const std::string& name, Device dev, const Timing& t, double bytes);

// Uniform values in [lo, hi) from a fixed Philox seed (host memory).
std::vector<float> random_uniform(int64_t n, float lo, float hi, uint64_t seed);

}  // namespace gt::bench
