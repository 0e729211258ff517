// bench_conv.cpp: conv2d forward, input gradient and weight gradient (kernels/conv.h) at the DDPM
// U-Net's shapes, each checked and timed alone.
//
// Cases (batch 64, as the U-Net's training step):
//   32->32  3x3 s1 p1 @ 28x28   the 28 x 28 ResBlocks          Winograd (kernels/winograd.h), then
//                                                              the direct kernels (kernels/conv3x3.h)
//   64->64  3x3 s1 p1 @ 14x14   the 14 x 14 ResBlocks          Winograd, then direct
//   96->32  3x3 s1 p1 @ 28x28   the first up-path ResBlock      Winograd, then direct
//   32->32  3x3 s2 p1 @ 28x28   the downsampling convolution    im2col + GEMM (kernels/conv.cpp)
//   96->32  1x1 s1 p0 @ 28x28   an up-path skip                 im2col + GEMM
// FLOPs of each pass: 2 B O C kh kw Ho Wo (forward, input gradient and weight gradient alike), the
// direct algorithm's count for every algorithm, so Winograd's GFLOP/s are effective ones (it does
// ~4x fewer multiplications) and compare directly with the direct kernels' times.
//
// Check first, at batch 4 (so that the reference stays cheap): y, dx, dw and db from
// conv2d_forward_cpu / conv2d_backward_cpu against a double-precision loop over the definition
// y[b,o,p,q] = bias[o] + sum_{c,i,j} w[o,c,i,j] x[b,c,p s - pad + i, q s - pad + j]; on CUDA each
// against the same reference. Then time at batch 64: "fwd" (y written), "dx" (the input gradient
// alone: dw and db not asked for), "dw" (the weight gradient alone).
//
//   bench_conv [reps=10] [warmup=2] [only]     only: run just the cases whose name contains it
//                                              (e.g. "winograd", "64->64"; for perf record)
#include <cstdio>
#include <string>
#include <vector>

#include "benchmarks/harness.h"
#include "core/device.h"
#include "core/tensor.h"
#include "kernels/conv.h"
#include "kernels/winograd.h"

namespace {

using gt::Device;
using gt::Tensor;

struct Case {
  int64_t C, O, H, k, stride, pad;
  const char* what;
};

// y, dx, dw of one convolution in double; dy given (dx and dw start at 0).
void reference(const gt::Conv2dGeom& g, const std::vector<float>& x, const std::vector<float>& w,
               const std::vector<float>& bias, const std::vector<float>& dy, std::vector<double>& y,
               std::vector<double>& dx, std::vector<double>& dw) {
  y.assign((size_t)(g.B * g.O * g.Ho * g.Wo), 0);
  dx.assign(x.size(), 0);
  dw.assign(w.size(), 0);
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t o = 0; o < g.O; ++o)
      for (int64_t p = 0; p < g.Ho; ++p)
        for (int64_t q = 0; q < g.Wo; ++q) {
          const size_t yi = (size_t)(((b * g.O + o) * g.Ho + p) * g.Wo + q);
          double s = bias[(size_t)o];
          const double d = dy[yi];
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t h = p * g.stride - g.pad + i, v = q * g.stride - g.pad + j;
                if (h < 0 || h >= g.H || v < 0 || v >= g.W) continue;
                const size_t xi = (size_t)(((b * g.C + c) * g.H + h) * g.W + v);
                const size_t wi = (size_t)(((o * g.C + c) * g.kh + i) * g.kw + j);
                s += (double)w[wi] * x[xi];
                dx[xi] += (double)w[wi] * d;
                dw[wi] += d * x[xi];
              }
          y[yi] = s;
        }
}

}  // namespace

int main(int argc, char** argv) {
  gt::bench::Options opt = gt::bench::parse_options(argc, argv, 10);
  if (argc < 3) opt.warmup = 2;
  const bool cuda = gt::cuda_available();
  gt::bench::print_machine(Device::CPU);
  if (cuda) gt::bench::print_machine(Device::CUDA);
  std::printf("timing: median (and min) of %d repetitions after %d warm-up runs; checks at batch 4, timing at 64\n",
              opt.reps, opt.warmup);

  const Case cases[] = {{32, 32, 28, 3, 1, 1, "winograd"}, {32, 32, 28, 3, 1, 1, "direct"},
                        {64, 64, 14, 3, 1, 1, "winograd"}, {64, 64, 14, 3, 1, 1, "direct"},
                        {96, 32, 28, 3, 1, 1, "winograd"}, {96, 32, 28, 3, 1, 1, "direct"},
                        {32, 32, 28, 3, 2, 1, "im2col+gemm"}, {96, 32, 28, 1, 1, 0, "im2col+gemm"},
                        {1, 32, 28, 3, 1, 1, "direct"}, {32, 1, 28, 3, 1, 1, "direct"}};  // conv_in, conv_out
  const std::string only = argc > 3 ? argv[3] : "";
  for (const Case& k : cases) {
    const bool wino = std::string(k.what) == "winograd";
    if (wino && !gt::conv3x3_winograd_available()) continue;  // no AVX-512: conv2d runs the direct kernel
    gt::set_conv3x3_algo(wino ? gt::Conv3x3Algo::Winograd : gt::Conv3x3Algo::Direct);
    const std::string name = "conv " + std::to_string(k.C) + "->" + std::to_string(k.O) + " " + std::to_string(k.k) +
                             "x" + std::to_string(k.k) + " s" + std::to_string(k.stride) + " @" +
                             std::to_string(k.H) + "x" + std::to_string(k.H) + " (" + k.what + ")";
    if (name.find(only) == std::string::npos) continue;
    for (const int64_t B : {int64_t(4), int64_t(64)}) {
      const gt::Conv2dGeom g = gt::conv2d_geom(B, k.C, k.H, k.H, k.O, k.k, k.k, k.stride, k.pad);
      const int64_t nx = B * k.C * k.H * k.H, ny = B * k.O * g.Ho * g.Wo, nw = k.O * k.C * k.k * k.k;
      std::vector<float> x = gt::bench::random_uniform(nx, -1.f, 1.f, 31);
      std::vector<float> w = gt::bench::random_uniform(nw, -0.2f, 0.2f, 32);
      std::vector<float> bias = gt::bench::random_uniform(k.O, -0.5f, 0.5f, 33);
      std::vector<float> dy = gt::bench::random_uniform(ny, -1.f, 1.f, 34);
      std::vector<float> y(ny), dx(nx, 0.f), dw(nw, 0.f);
      auto fwd = [&] { gt::conv2d_forward_cpu(g, x.data(), w.data(), bias.data(), y.data()); };
      auto bwd_dx = [&] { gt::conv2d_backward_cpu(g, x.data(), w.data(), dy.data(), dx.data(), nullptr, nullptr); };
      auto bwd_dw = [&] { gt::conv2d_backward_cpu(g, x.data(), w.data(), dy.data(), nullptr, dw.data(), nullptr); };
      const std::string tag = name + " B=" + std::to_string(B);
      if (B == 4) {
        // Sums of C kh kw (y, dx) or B Ho Wo (dw) float32 products of O(0.2) numbers.
        std::vector<double> ry, rdx, rdw;
        reference(g, x, w, bias, dy, ry, rdx, rdw);
        fwd();
        bwd_dx();
        bwd_dw();
        gt::bench::check_close(tag + " fwd cpu vs double", y, ry, 1e-4, 1e-4);
        gt::bench::check_close(tag + " dx cpu vs double", dx, rdx, 1e-4, 1e-4);
        gt::bench::check_close(tag + " dw cpu vs double", dw, rdw, 1e-3, 1e-4);
        // The weight and bias gradients asked for together: the direct kernel makes db in the
        // weight gradient's own pass over dy. db[o] = sum over b, p, q of dy.
        std::vector<double> rdb((size_t)k.O, 0.0);
        for (int64_t b = 0; b < B; ++b)
          for (int64_t o = 0; o < k.O; ++o)
            for (int64_t i = 0; i < g.Ho * g.Wo; ++i) rdb[(size_t)o] += dy[(size_t)((b * k.O + o) * g.Ho * g.Wo + i)];
        std::vector<float> dw2(nw, 0.f), db((size_t)k.O, 0.f);
        gt::conv2d_backward_cpu(g, x.data(), w.data(), dy.data(), nullptr, dw2.data(), db.data());
        gt::bench::check_close(tag + " dw (with db) cpu vs double", dw2, rdw, 1e-3, 1e-4);
        gt::bench::check_close(tag + " db cpu vs double", db, rdb, 1e-3, 1e-4);
#if GENTAPE_HAS_CUDA
        if (cuda) {
          auto up = [](const std::vector<float>& v) { return Tensor::from_vector(v, {(int64_t)v.size()}, Device::CUDA); };
          Tensor gx = up(x), gw = up(w), gb = up(bias), gdy = up(dy), gy = Tensor::empty({ny}, Device::CUDA);
          Tensor gdx = Tensor::zeros({nx}, Device::CUDA), gdw = Tensor::zeros({nw}, Device::CUDA);
          gt::conv2d_forward_cuda(g, gx.data(), gw.data(), gb.data(), gy.data());
          Tensor gdb = Tensor::zeros({k.O}, Device::CUDA);
          gt::conv2d_backward_cuda(g, gx.data(), gw.data(), gdy.data(), gdx.data(), gdw.data(), gdb.data());
          gt::bench::check_close(tag + " fwd cuda vs double", gy.to_vector(), ry, 1e-4, 1e-4);
          gt::bench::check_close(tag + " dx cuda vs double", gdx.to_vector(), rdx, 1e-4, 1e-4);
          gt::bench::check_close(tag + " dw cuda vs double", gdw.to_vector(), rdw, 1e-3, 1e-4);
          gt::bench::check_close(tag + " db cuda vs double", gdb.to_vector(), rdb, 1e-3, 1e-4);
        }
#endif
        continue;
      }
      const double flops = 2.0 * B * k.O * k.C * k.k * k.k * g.Ho * g.Wo;
      gt::bench::report_gflops(tag + " fwd", Device::CPU, gt::bench::time_fn(Device::CPU, fwd, opt), flops);
      gt::bench::report_gflops(tag + " dx", Device::CPU, gt::bench::time_fn(Device::CPU, bwd_dx, opt), flops);
      gt::bench::report_gflops(tag + " dw", Device::CPU, gt::bench::time_fn(Device::CPU, bwd_dw, opt), flops);
#if GENTAPE_HAS_CUDA
      if (cuda) {
        auto up = [](const std::vector<float>& v) { return Tensor::from_vector(v, {(int64_t)v.size()}, Device::CUDA); };
        Tensor gx = up(x), gw = up(w), gb = up(bias), gdy = up(dy), gy = Tensor::empty({ny}, Device::CUDA);
        Tensor gdx = Tensor::zeros({nx}, Device::CUDA), gdw = Tensor::zeros({nw}, Device::CUDA);
        auto gfwd = [&] { gt::conv2d_forward_cuda(g, gx.data(), gw.data(), gb.data(), gy.data()); };
        auto gdxf = [&] { gt::conv2d_backward_cuda(g, gx.data(), gw.data(), gdy.data(), gdx.data(), nullptr, nullptr); };
        auto gdwf = [&] { gt::conv2d_backward_cuda(g, gx.data(), gw.data(), gdy.data(), nullptr, gdw.data(), nullptr); };
        gt::bench::report_gflops(tag + " fwd", Device::CUDA, gt::bench::time_fn(Device::CUDA, gfwd, opt), flops);
        gt::bench::report_gflops(tag + " dx", Device::CUDA, gt::bench::time_fn(Device::CUDA, gdxf, opt), flops);
        gt::bench::report_gflops(tag + " dw", Device::CUDA, gt::bench::time_fn(Device::CUDA, gdwf, opt), flops);
      }
#endif
    }
  }
  if (!cuda) std::printf("cuda: skipped (%s)\n", gt::cuda_unavailable_reason().c_str());
  return 0;
}
