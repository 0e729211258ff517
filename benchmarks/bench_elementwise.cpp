// bench_elementwise.cpp: memory-bound elementwise kernels (kernels/elementwise.h).
//
// Cases, each over 1M and 16M floats:
//   add      out = a + b              binary_forward<AddOp>, same shapes   bytes = 3 x 4 N (2 reads, 1 write)
//   sigmoid  y = 1 / (1 + e^-x)       unary_forward<SigmoidOp>             bytes = 2 x 4 N
//   sigmoid  dx += dy * y (1 - y)     unary_backward<SigmoidOp>            bytes = 4 x 4 N (dy, y, dx read; dx written)
// 1M floats (4 MiB per array) fits this VM's 32 MiB L3, 16M (64 MiB) does not: the two sizes show
// cache and DRAM bandwidth. GB/s is a fraction of the harness's measured copy bandwidth.
//
// Check first: every CPU result against a double-precision loop; on CUDA each against the CPU.
//
//   bench_elementwise [reps=20] [warmup=3]
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "benchmarks/harness.h"
#include "core/device.h"
#include "core/tensor.h"
#include "kernels/elementwise.h"

namespace {

using gt::Device;
using gt::Tensor;

// One float32 rounding (add) or expf/division in float (sigmoid: a few ulps of a value <= 1).
constexpr double kAtol = 1e-6;
constexpr double kRtol = 1e-6;

std::string size_name(int64_t n) { return n >= (1 << 20) ? std::to_string(n >> 20) + "M" : std::to_string(n); }

}  // namespace

int main(int argc, char** argv) {
  gt::bench::Options opt = gt::bench::parse_options(argc, argv, 20);
  const bool cuda = gt::cuda_available();
  gt::bench::print_machine(Device::CPU);
  if (cuda) gt::bench::print_machine(Device::CUDA);
  std::printf("timing: median (and min) of %d repetitions after %d warm-up runs\n", opt.reps, opt.warmup);

  for (int64_t n : {int64_t(1) << 20, int64_t(1) << 24}) {
    const std::string sz = size_name(n);
    std::vector<float> a = gt::bench::random_uniform(n, -4.f, 4.f, 11);
    std::vector<float> b = gt::bench::random_uniform(n, -4.f, 4.f, 12);
    std::vector<float> dy = gt::bench::random_uniform(n, -1.f, 1.f, 13);
    const gt::BroadcastPlan plan = gt::make_broadcast_plan({n}, {n});

    // ---- references (double) ----
    std::vector<double> ref_add(n), ref_sig(n), ref_dsig(n);
    for (int64_t i = 0; i < n; ++i) {
      ref_add[i] = (double)a[i] + (double)b[i];
      double s = 1.0 / (1.0 + std::exp(-(double)a[i]));
      ref_sig[i] = s;
      ref_dsig[i] = (double)dy[i] * s * (1.0 - s);  // dx starts at 0
    }

    // ---- CPU ----
    std::vector<float> out(n), y(n), dx(n, 0.f);
    gt::binary_forward_cpu<gt::AddOp>(out.data(), a.data(), b.data(), plan);
    gt::bench::check_close("add " + sz + " cpu vs double", out, ref_add, kAtol, kRtol);
    gt::unary_forward_cpu<gt::SigmoidOp>(y.data(), a.data(), n, 0.f);
    gt::bench::check_close("sigmoid fwd " + sz + " cpu vs double", y, ref_sig, kAtol, kRtol);
    gt::unary_backward_cpu<gt::SigmoidOp>(dx.data(), dy.data(), nullptr, y.data(), n, 0.f);
    gt::bench::check_close("sigmoid bwd " + sz + " cpu vs double", dx, ref_dsig, kAtol, kRtol);

    gt::bench::Timing t;
    t = gt::bench::time_fn(Device::CPU, [&] { gt::binary_forward_cpu<gt::AddOp>(out.data(), a.data(), b.data(), plan); }, opt);
    gt::bench::report_gbs("add " + sz, Device::CPU, t, 3.0 * 4 * n);
    t = gt::bench::time_fn(Device::CPU, [&] { gt::unary_forward_cpu<gt::SigmoidOp>(y.data(), a.data(), n, 0.f); }, opt);
    gt::bench::report_gbs("sigmoid fwd " + sz, Device::CPU, t, 2.0 * 4 * n);
    t = gt::bench::time_fn(Device::CPU, [&] {
      gt::unary_backward_cpu<gt::SigmoidOp>(dx.data(), dy.data(), nullptr, y.data(), n, 0.f);
    }, opt);
    gt::bench::report_gbs("sigmoid bwd " + sz, Device::CPU, t, 4.0 * 4 * n);

    // ---- CUDA ----
#if GENTAPE_HAS_CUDA
    if (cuda) {
      Tensor da = Tensor::from_vector(a, {n}, Device::CUDA), db = Tensor::from_vector(b, {n}, Device::CUDA);
      Tensor ddy = Tensor::from_vector(dy, {n}, Device::CUDA);
      Tensor dout = Tensor::empty({n}, Device::CUDA), dyv = Tensor::empty({n}, Device::CUDA);
      Tensor ddx = Tensor::zeros({n}, Device::CUDA);
      gt::binary_forward_cuda<gt::AddOp>(dout.data(), da.data(), db.data(), plan);
      gt::bench::check_close("add " + sz + " cuda vs cpu", dout.to_vector(), out, kAtol, kRtol);
      gt::unary_forward_cuda<gt::SigmoidOp>(dyv.data(), da.data(), n, 0.f);
      gt::bench::check_close("sigmoid fwd " + sz + " cuda vs cpu", dyv.to_vector(), y, kAtol, kRtol);
      gt::unary_backward_cuda<gt::SigmoidOp>(ddx.data(), ddy.data(), nullptr, dyv.data(), n, 0.f);
      gt::bench::check_close("sigmoid bwd " + sz + " cuda vs double", ddx.to_vector(), ref_dsig, kAtol, kRtol);

      t = gt::bench::time_fn(Device::CUDA, [&] {
        gt::binary_forward_cuda<gt::AddOp>(dout.data(), da.data(), db.data(), plan);
      }, opt);
      gt::bench::report_gbs("add " + sz, Device::CUDA, t, 3.0 * 4 * n);
      t = gt::bench::time_fn(Device::CUDA, [&] { gt::unary_forward_cuda<gt::SigmoidOp>(dyv.data(), da.data(), n, 0.f); }, opt);
      gt::bench::report_gbs("sigmoid fwd " + sz, Device::CUDA, t, 2.0 * 4 * n);
      t = gt::bench::time_fn(Device::CUDA, [&] {
        gt::unary_backward_cuda<gt::SigmoidOp>(ddx.data(), ddy.data(), nullptr, dyv.data(), n, 0.f);
      }, opt);
      gt::bench::report_gbs("sigmoid bwd " + sz, Device::CUDA, t, 4.0 * 4 * n);
    }
#endif
  }
  if (!cuda) std::printf("cuda: skipped (%s)\n", gt::cuda_unavailable_reason().c_str());
  return 0;
}
