// bench_reduce.cpp: memory-bound reductions (kernels/reduce.h).
//
// Cases:
//   sum_all        out = sum_i x_i over 16M floats          sum_all_forward     bytes = 4 N
//   sum dim 1      out (4096) = sum_k x (4096, 4096)[:, k]   sum_dim_forward (outer 4096, n 4096, inner 1)
//   sum dim 0      out (4096) = sum_k x (4096, 4096)[k, :]   sum_dim_forward (outer 1, n 4096, inner 4096)
// (dim 0 reads the same bytes with the reduced index strided: the layout sum_dim handles
// "sequentially over k".) bytes = 4 N read + the output written. GB/s is a fraction of the
// harness's measured copy bandwidth.
//
// Check first: the CPU result against a double loop, the CUDA one against the same double loop.
//
//   bench_reduce [reps=20] [warmup=3]
#include <cstdio>
#include <string>
#include <vector>

#include "benchmarks/harness.h"
#include "core/device.h"
#include "core/tensor.h"
#include "kernels/reduce.h"

namespace {

using gt::Device;
using gt::Tensor;

// Inputs uniform in [0, 1): no cancellation, so relative error bounds apply. The full sum
// accumulates in double on the CPU (error ~1 ulp of the result) and as a float tree on CUDA
// (error <= log2(N) ~ 24 roundings, each <= 6e-8 relative): rtol 1e-5. Sums along a dim add 4096
// floats in float (8 lanes of 512 on the CPU; worst case 512 x 6e-8 = 3e-5 relative): rtol 1e-4.
constexpr double kAllRtol = 1e-5;
constexpr double kDimRtol = 1e-4;

}  // namespace

int main(int argc, char** argv) {
  gt::bench::Options opt = gt::bench::parse_options(argc, argv, 20);
  const bool cuda = gt::cuda_available();
  gt::bench::print_machine(Device::CPU);
  if (cuda) gt::bench::print_machine(Device::CUDA);
  std::printf("timing: median (and min) of %d repetitions after %d warm-up runs\n", opt.reps, opt.warmup);

  // ---- sum of all 16M elements ----
  {
    const int64_t n = int64_t(1) << 24;
    std::vector<float> x = gt::bench::random_uniform(n, 0.f, 1.f, 21);
    double ref = 0;
    for (float v : x) ref += v;
    float out = 0;
    gt::sum_all_forward_cpu(&out, x.data(), n, 1.f);
    gt::bench::check_close("sum_all 16M cpu vs double", {out}, std::vector<double>{ref}, 0.0, kAllRtol);
    gt::bench::Timing t = gt::bench::time_fn(Device::CPU, [&] { gt::sum_all_forward_cpu(&out, x.data(), n, 1.f); }, opt);
    gt::bench::report_gbs("sum_all 16M", Device::CPU, t, 4.0 * n + 4);
#if GENTAPE_HAS_CUDA
    if (cuda) {
      Tensor dx = Tensor::from_vector(x, {n}, Device::CUDA), dout = Tensor::empty({1}, Device::CUDA);
      gt::sum_all_forward_cuda(dout.data(), dx.data(), n, 1.f);
      gt::bench::check_close("sum_all 16M cuda vs double", dout.to_vector(), std::vector<double>{ref}, 0.0, kAllRtol);
      t = gt::bench::time_fn(Device::CUDA, [&] { gt::sum_all_forward_cuda(dout.data(), dx.data(), n, 1.f); }, opt);
      gt::bench::report_gbs("sum_all 16M", Device::CUDA, t, 4.0 * n + 4);
    }
#endif
  }

  // ---- sums along one dim of a (4096, 4096) matrix ----
  const int64_t R = 4096, Cn = 4096;
  std::vector<float> x = gt::bench::random_uniform(R * Cn, 0.f, 1.f, 22);
  Tensor dx;
  if (cuda) dx = Tensor::from_vector(x, {R * Cn}, Device::CUDA);
  struct DimCase {
    const char* name;
    int64_t outer, n, inner;
  };
  for (const DimCase& c : {DimCase{"sum dim 1 of (4096, 4096)", R, Cn, 1}, DimCase{"sum dim 0 of (4096, 4096)", 1, R, Cn}}) {
    const int64_t nout = c.outer * c.inner;
    std::vector<double> ref(nout, 0.0);
    for (int64_t o = 0; o < c.outer; ++o)
      for (int64_t k = 0; k < c.n; ++k)
        for (int64_t i = 0; i < c.inner; ++i) ref[o * c.inner + i] += x[(o * c.n + k) * c.inner + i];
    std::vector<float> out(nout);
    gt::sum_dim_forward_cpu(out.data(), x.data(), c.outer, c.n, c.inner, 1.f);
    gt::bench::check_close(std::string(c.name) + " cpu vs double", out, ref, 0.0, kDimRtol);
    gt::bench::Timing t = gt::bench::time_fn(Device::CPU, [&] {
      gt::sum_dim_forward_cpu(out.data(), x.data(), c.outer, c.n, c.inner, 1.f);
    }, opt);
    const double bytes = 4.0 * (double)(R * Cn) + 4.0 * (double)nout;
    gt::bench::report_gbs(c.name, Device::CPU, t, bytes);
#if GENTAPE_HAS_CUDA
    if (cuda) {
      Tensor dout = Tensor::empty({nout}, Device::CUDA);
      gt::sum_dim_forward_cuda(dout.data(), dx.data(), c.outer, c.n, c.inner, 1.f);
      gt::bench::check_close(std::string(c.name) + " cuda vs double", dout.to_vector(), ref, 0.0, kDimRtol);
      t = gt::bench::time_fn(Device::CUDA, [&] {
        gt::sum_dim_forward_cuda(dout.data(), dx.data(), c.outer, c.n, c.inner, 1.f);
      }, opt);
      gt::bench::report_gbs(c.name, Device::CUDA, t, bytes);
    }
#endif
  }
  if (!cuda) std::printf("cuda: skipped (%s)\n", gt::cuda_unavailable_reason().c_str());
  return 0;
}
