// The F(4x4, 3x3) Winograd convolution (kernels/winograd.h) against the definition summed in double:
// forward, input gradient (the same kernel on the flipped weights) and weight + bias gradient, at
// the U-Net's sizes (28x28: the tiles cover the plane exactly; 14x14: images side by side and
// stacked, sharing their zero borders), at every kind of canvas (a part-empty last row of images), at widths past one vector (33: the blocked rows span three 16-column
// transposes, five 8-column ones on AVX2), at planes smaller than one tile, and at channel counts
// that are multiples of 8 but not 16 (AVX2 builds only).
//
// Tolerance: Winograd's transforms scale by up to 8 and 1/24 around the products, so its rounding
// error is bounded relative to the magnitude of the terms, not to the result: |got - want| <=
// kRel * (the tensor's largest sum of |terms|) + kAbs. Measured here: at most 2.0e-6 of it over
// every case and pass (the direct kernels: ~1e-7), so kRel = 1e-5 leaves 5x headroom; a wrong
// point, tap, lane or tile edge gives errors of order 1 relative to it.
#include <array>
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/ops.h"
#include "core/device.h"
#include "core/rng.h"
#include "kernels/conv.h"
#include "kernels/conv3x3.h"
#include "kernels/winograd.h"

using namespace gt;

namespace {

constexpr double kRel = 1e-5;  // of sum |terms| (see above)
constexpr double kAbs = 1e-6;

struct Ref {
  std::vector<double> val, mag;  // the sum and the sum of |terms|
};

// y[b,o,h,w] = bias[o] + sum_{c,i,j} w[o,c,i,j] x[b,c,h-1+i,w-1+j]
Ref ref_forward(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& bias, int64_t B,
                int64_t C, int64_t H, int64_t W, int64_t O) {
  Ref r{std::vector<double>((size_t)(B * O * H * W)), std::vector<double>((size_t)(B * O * H * W))};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t q = 0; q < W; ++q) {
          double s = bias.empty() ? 0.0 : bias[(size_t)o], m = std::fabs(s);
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < 3; ++i)
              for (int64_t j = 0; j < 3; ++j) {
                const int64_t hh = h - 1 + i, qq = q - 1 + j;
                if (hh < 0 || hh >= H || qq < 0 || qq >= W) continue;
                const double t = (double)w[(size_t)(((o * C + c) * 3 + i) * 3 + j)] *
                                 x[(size_t)(((b * C + c) * H + hh) * W + qq)];
                s += t;
                m += std::fabs(t);
              }
          const size_t k = (size_t)(((b * O + o) * H + h) * W + q);
          r.val[k] = s;
          r.mag[k] = m;
        }
  return r;
}

// dw[o,c,i,j] = sum_{b,h,w} dy[b,o,h,w] x[b,c,h-1+i,w-1+j]
Ref ref_weight_grad(const std::vector<float>& x, const std::vector<float>& dy, int64_t B, int64_t C, int64_t H,
                    int64_t W, int64_t O) {
  Ref r{std::vector<double>((size_t)(O * C * 9)), std::vector<double>((size_t)(O * C * 9))};
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 3; ++j) {
          double s = 0, m = 0;
          for (int64_t b = 0; b < B; ++b)
            for (int64_t h = 0; h < H; ++h)
              for (int64_t q = 0; q < W; ++q) {
                const int64_t hh = h - 1 + i, qq = q - 1 + j;
                if (hh < 0 || hh >= H || qq < 0 || qq >= W) continue;
                const double t = (double)dy[(size_t)(((b * O + o) * H + h) * W + q)] *
                                 x[(size_t)(((b * C + c) * H + hh) * W + qq)];
                s += t;
                m += std::fabs(t);
              }
          const size_t k = (size_t)(((o * C + c) * 3 + i) * 3 + j);
          r.val[k] = s;
          r.mag[k] = m;
        }
  return r;
}

// Every element within kRel * (the largest sum of |terms| in the tensor) + kAbs of the reference
// (plus `base`, the accumulated-onto value). Normwise, not per element: where the exact result is
// a sum of few or no terms (a tap of dw whose products all fall in the padding: exactly 0), the
// Winograd sum still passes through the 36 points, which cancel to rounding noise of the scale of
// the whole tile's values.
void require_close(const std::vector<float>& got, const Ref& want, double base = 0.0) {
  REQUIRE(got.size() == want.val.size());
  double scale = 0;
  for (double m : want.mag) scale = std::max(scale, m);
  size_t bad = 0;
  double worst = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    const double err = std::fabs((double)got[k] - (want.val[k] + base));
    worst = std::max(worst, err / scale);
    if (!(err <= kRel * scale + kAbs)) ++bad;
  }
  INFO("worst error / largest sum|terms| = " << worst);
  REQUIRE(bad == 0);
}

std::vector<float> randn(Generator& gen, const Shape& shape) { return gen.randn(shape).to_vector(); }

// The input gradient's kernel: w (O, C, 3, 3) transposed to (C, O, 3, 3) and flipped, so that
// dx = ref_forward(dy, flipped_transpose(w, O, C), {}, B, O, H, W, C).
std::vector<float> flipped_transpose(const std::vector<float>& w, int64_t O, int64_t C) {
  std::vector<float> w2((size_t)(C * O * 9));
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < 9; ++k) w2[(size_t)((c * O + o) * 9 + k)] = w[(size_t)((o * C + c) * 9 + 8 - k)];
  return w2;
}

// False (with a printed reason) in a build without AVX-512 or AVX2, where conv2d keeps the direct kernels.
bool have_winograd() {
  if (conv3x3_winograd_available()) return true;
  WARN("skipped: this build has neither AVX-512 nor AVX2 + FMA, so there is no Winograd kernel (conv2d uses the "
       "direct ones)");
  return false;
}

}  // namespace

TEST_CASE("conv3x3 winograd: forward, input and weight gradients equal the definition", "[ops]") {
  if (!have_winograd()) return;
  // The tilings these cases get (conv3x3_winograd_tiling): each image alone (28x28, 5x7, 9x33,
  // 10x10); stacked one per canvas row (3 x 14x14, 2 x 1x1); side by side and stacked with the last
  // canvas row part empty (5 x 6x5: rows of 2; 5 x 5x6: rows of 3), side by side only (3 x 8x14),
  // and the U-Net's sampling batch at 14x14 (rows of 4, stacked).
  const struct {
    int64_t B, H, W, px;
    bool stacked;
    int64_t tiles;
  } tilings[] = {{2, 28, 28, 1, false, 98}, {3, 14, 14, 1, true, 44}, {2, 1, 1, 1, true, 1},
                 {5, 6, 5, 2, true, 15},    {5, 5, 6, 3, true, 15},   {3, 8, 14, 3, false, 22},
                 {16, 14, 14, 4, true, 225}, {64, 14, 14, 4, true, 900}, {64, 28, 28, 1, false, 3136}};
  for (const auto& t : tilings) {
    const WinogradTiling got = conv3x3_winograd_tiling(t.B, t.H, t.W);
    INFO("tiling of " << t.B << " x " << t.H << "x" << t.W);
    CHECK(got.px == t.px);
    CHECK(got.stacked == t.stacked);
    CHECK(got.tiles == t.tiles);
  }
  for (const auto& [B, C, H, W, O] : std::vector<std::array<int64_t, 5>>{
           {2, 32, 28, 28, 32}, {3, 16, 14, 14, 48}, {1, 32, 5, 7, 16}, {2, 16, 1, 1, 16}, {1, 16, 9, 33, 32},
           {2, 24, 10, 10, 8}, {5, 16, 6, 5, 16}, {5, 16, 5, 6, 32}, {3, 16, 8, 14, 16}, {16, 16, 14, 14, 16}}) {
    INFO("x (" << B << ", " << C << ", " << H << ", " << W << "), O = " << O);
    // 24 -> 8 (channels in multiples of 8, not 16) only where the vectors hold 8 lanes (AVX2).
    if (C % conv3x3_winograd_channels() != 0 || O % conv3x3_winograd_channels() != 0) {
      REQUIRE_FALSE(conv3x3_winograd_applies(C, O));
      continue;
    }
    REQUIRE(conv3x3_winograd_applies(C, O));
    Generator gen(5);
    const std::vector<float> x = randn(gen, {B, C, H, W}), w = randn(gen, {O, C, 3, 3}), dy = randn(gen, {B, O, H, W}),
                             bias = randn(gen, {O});
    // Forward, written over garbage.
    std::vector<float> wt((size_t)(C * 9 * O)), U((size_t)(kWinogradPoints * C * O));
    conv3x3_weights_forward(w.data(), O, C, wt.data());
    winograd_weights(wt.data(), C, O, U.data());
    std::vector<float> y((size_t)(B * O * H * W), 7.0f);
    conv3x3_winograd_cpu(x.data(), B, C, H, W, U.data(), O, bias.data(), y.data(), false);
    require_close(y, ref_forward(x, w, bias, B, C, H, W, O));
    // Accumulated onto 1.
    std::fill(y.begin(), y.end(), 1.0f);
    conv3x3_winograd_cpu(x.data(), B, C, H, W, U.data(), O, bias.data(), y.data(), true);
    require_close(y, ref_forward(x, w, bias, B, C, H, W, O), 1.0);
    // Input gradient: the forward of dy with w^T flipped (w2[c,o,i,j] = w[o,c,2-i,2-j]).
    const std::vector<float> w2 = flipped_transpose(w, O, C);
    std::vector<float> wtb((size_t)(O * 9 * C)), Ub((size_t)(kWinogradPoints * O * C)), dx((size_t)(B * C * H * W), 7.0f);
    conv3x3_weights_backward(w.data(), O, C, wtb.data());
    winograd_weights(wtb.data(), O, C, Ub.data());
    conv3x3_winograd_cpu(dy.data(), B, O, H, W, Ub.data(), C, nullptr, dx.data(), false);
    require_close(dx, ref_forward(dy, w2, {}, B, O, H, W, C));
    // Weight and bias gradients, accumulated onto 0.5.
    std::vector<float> dw((size_t)(O * C * 9), 0.5f), db((size_t)O, 0.5f);
    conv3x3_winograd_weight_grad_cpu(x.data(), dy.data(), B, C, H, W, O, dw.data(), db.data());
    require_close(dw, ref_weight_grad(x, dy, B, C, H, W, O), 0.5);
    for (int64_t o = 0; o < O; ++o) {
      double s = 0.5, m = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t p = 0; p < H * W; ++p) {
          s += dy[(size_t)((b * O + o) * H * W + p)];
          m += std::fabs(dy[(size_t)((b * O + o) * H * W + p)]);
        }
      REQUIRE(std::fabs(db[(size_t)o] - s) <= 1e-6 * m + kAbs);
    }
  }
  REQUIRE(conv3x3_winograd_weight_grad_applies(128, 64, 2));    // the U-Net's largest: 1.2 MB per thread
  REQUIRE_FALSE(conv3x3_winograd_weight_grad_applies(512, 512, 2));  // 75 MB: im2col + GEMM instead
  REQUIRE_FALSE(conv3x3_winograd_applies(1, 32));   // conv_in: direct kernel
  REQUIRE_FALSE(conv3x3_winograd_applies(32, 12));  // not a multiple of the vector width (8 or 16)
  REQUIRE(conv3x3_winograd_applies(32, 8) == (conv3x3_winograd_channels() == 8));
}

// conv2d dispatches 16-multiple channel counts to Winograd; with GENTAPE_CONV3X3's switch set to
// direct the same call runs the direct kernels. Both must agree, and the threaded Winograd forward
// must equal the single-threaded one bit for bit (each output is summed in one fixed order).
TEST_CASE("conv3x3 winograd: conv2d's two algorithms agree; threads do not change the forward", "[ops][threads]") {
  if (!have_winograd()) return;
  const int64_t B = 4, C = 32, H = 14, W = 14, O = 16;
  Generator gen(9);
  const std::vector<float> x = randn(gen, {B, C, H, W}), w = randn(gen, {O, C, 3, 3}), dy = randn(gen, {B, O, H, W}),
                           bias = randn(gen, {O});
  const Conv2dGeom g = conv2d_geom(B, C, H, W, O, 3, 3, 1, 1);
  struct Out {
    std::vector<float> y, dx, dw, db;
  };
  auto run = [&](Conv3x3Algo algo, int threads) {
    const Conv3x3Algo before = conv3x3_algo();
    const int nt = num_threads();
    set_conv3x3_algo(algo);
    set_num_threads(threads);
    Out r{std::vector<float>((size_t)(B * O * H * W)), std::vector<float>((size_t)(B * C * H * W), 0.0f),
          std::vector<float>((size_t)(O * C * 9), 0.0f), std::vector<float>((size_t)O, 0.0f)};
    conv2d_forward_cpu(g, x.data(), w.data(), bias.data(), r.y.data());
    conv2d_backward_cpu(g, x.data(), w.data(), dy.data(), r.dx.data(), r.dw.data(), r.db.data(), true);
    set_conv3x3_algo(before);
    set_num_threads(nt);
    return r;
  };
  const Out wino1 = run(Conv3x3Algo::Winograd, 1), wino2 = run(Conv3x3Algo::Winograd, 2),
            direct = run(Conv3x3Algo::Direct, 2);
  REQUIRE(wino1.y == wino2.y);
  REQUIRE(wino1.dx == wino2.dx);
  const Ref y = ref_forward(x, w, bias, B, C, H, W, O), dx = ref_forward(dy, flipped_transpose(w, O, C), {}, B, O, H, W, C),
            dw = ref_weight_grad(x, dy, B, C, H, W, O);
  for (const Out* r : {&wino2, &direct}) {
    require_close(r->y, y);
    require_close(r->dx, dx);
    require_close(r->dw, dw);
    for (int64_t o = 0; o < O; ++o) {
      double s = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t p = 0; p < H * W; ++p) s += dy[(size_t)((b * O + o) * H * W + p)];
      REQUIRE(r->db[(size_t)o] == Approx(s).margin(1e-4));
    }
  }
  REQUIRE(wino2.y != direct.y);  // two different summations: the switch really changed the algorithm
}

// The weight cache (winograd_weights_cached) keys on the weights' address but must follow their
// contents: an optimiser updates a parameter in place, at the same address, every step.
TEST_CASE("conv3x3 winograd: the weight cache follows in-place updates of the weights", "[ops]") {
  if (!have_winograd()) return;
  const int64_t B = 1, C = 16, H = 6, W = 6, O = 16;
  Generator gen(3);
  std::vector<float> x = randn(gen, {B, C, H, W}), w = randn(gen, {O, C, 3, 3});
  const Conv2dGeom g = conv2d_geom(B, C, H, W, O, 3, 3, 1, 1);
  std::vector<float> y((size_t)(B * O * H * W));
  for (int step = 0; step < 3; ++step) {
    conv2d_forward_cpu(g, x.data(), w.data(), nullptr, y.data());
    require_close(y, ref_forward(x, w, {}, B, C, H, W, O));
    conv2d_forward_cpu(g, x.data(), w.data(), nullptr, y.data());  // a cache hit gives the same
    require_close(y, ref_forward(x, w, {}, B, C, H, W, O));
    w[(size_t)(step * 37)] += 1.0f;  // one weight changed in place
  }
  const auto a = winograd_weights_cached(w.data(), O, C, false), b = winograd_weights_cached(w.data(), O, C, false);
  REQUIRE(a.get() == b.get());  // unchanged weights: the same U, not recomputed
}

// conv2d_add (autograd/ops.h) with the addend folded into the Winograd store equals conv2d then add,
// for both kinds of addend, in values and in every gradient (x, weight, bias, addend).
TEST_CASE("conv3x3 winograd: conv2d_add equals conv2d + add, values and gradients", "[ops]") {
  const Tensor x0 = Tensor::zeros({2, 16, 5, 5}), w0 = Tensor::zeros({16, 16, 3, 3});  // shape errors first
  REQUIRE_THROWS_WITH(conv2d_add(x0, w0, Tensor(), Tensor::zeros({2, 16, 5, 1})),
                      Catch::Contains("(2, 16, 5, 1)") && Catch::Contains("(2, 16, 1, 1)"));
  REQUIRE_THROWS_WITH(conv2d_add(x0, Tensor::zeros({16, 16, 1, 1}), Tensor(), Tensor::zeros({2, 16, 5, 5})),
                      Catch::Contains("(O, C, 3, 3)"));
  if (!have_winograd()) return;  // elsewhere conv2d_add is conv2d then add: nothing to compare
  const int64_t B = 3, C = 16, H = 9, W = 20, O = 32;  // W > 16: rows stored in two 16-column parts
  for (const bool per_sample : {true, false}) {
    INFO((per_sample ? "addend (B, O, 1, 1)" : "addend (B, O, H, W)"));
    std::vector<std::vector<float>> got[2];
    for (int fused = 0; fused < 2; ++fused) {
      Generator gen(21);
      Tensor x = gen.randn({B, C, H, W}).set_requires_grad(), w = gen.randn({O, C, 3, 3}).set_requires_grad();
      Tensor b = gen.randn({O}).set_requires_grad();
      Tensor a = (per_sample ? gen.randn({B, O, 1, 1}) : gen.randn({B, O, H, W})).set_requires_grad();
      Tensor r = gen.randn({B, O, H, W}), r2 = gen.randn(a.shape());
      Tensor y = fused ? conv2d_add(x, w, b, a) : add(conv2d(x, w, b, 1, 1), a);
      // The addend is also used after y, so its gradient is first written by that use and then
      // accumulated onto by conv2d_add's backward (both of its paths: written and added).
      backward(add(sum(mul(y, r)), sum(mul(a, r2))));
      got[fused] = {y.to_vector(), x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector(),
                    a.grad().to_vector()};
    }
    const char* what[] = {"y", "dx", "dw", "db", "d addend"};
    for (size_t k = 0; k < 5; ++k) {
      INFO(what[k]);
      REQUIRE(got[0][k].size() == got[1][k].size());
      for (size_t i = 0; i < got[0][k].size(); ++i)
        REQUIRE(got[1][k][i] == Approx(got[0][k][i]).margin(1e-4).epsilon(1e-5));  // sums of <= 540 terms
    }
  }
}
