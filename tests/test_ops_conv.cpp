// test_ops_conv.cpp: conv2d, conv_transpose2d, upsample_nearest2d and avg_pool2d against naive
// double-precision loops written straight from PyTorch's definitions (conv_transpose2d as a scatter,
// independent of the im2col/col2im implementation), finite differences and CPU vs CUDA; the
// adjoint identity between conv2d and conv_transpose2d; shape errors.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>

#include "core/rng.h"
#include "kernels/conv.h"
#include "kernels/conv3x3.h"
#include "kernels/matmul.h"
#include "tests/op_table.h"

namespace gt::test {

namespace {

// Unit roundoff of float32 (2^-24).
constexpr double kF32Unit = 5.9604644775390625e-8;

// Tolerances for an op whose longest float32 reduction (forward or backward) has k terms. A float32
// k-term dot product errs by at most k * u * sum_i |a_i b_i|; with unit-normal inputs and seeds
// sum_i |a_i b_i| is about 0.64 k, so k^2 * u bounds it. Never below the table's defaults. A wrong
// index, offset or sign gives O(1) errors, far above these.
Tolerance reduction_tolerance(int64_t k) {
  Tolerance t;
  const double bound = (double)k * (double)k * kF32Unit;
  t.fwd_atol = std::max(t.fwd_atol, bound);
  t.dev_atol = std::max(t.dev_atol, bound);
  return t;
}

double at4(const HostTensor& t, int64_t a, int64_t b, int64_t c, int64_t d) {
  return t.v[(size_t)(((a * t.shape[1] + b) * t.shape[2] + c) * t.shape[3] + d)];
}

// y[b,o,oh,ow] = bias[o] + sum_{c,i,j} w[o,c,i,j] x[b,c, oh*s-p+i, ow*s-p+j]  (zero padding)
RefFn conv2d_ref(int s, int p) {
  return [s, p](const std::vector<HostTensor>& in) {
    const HostTensor &x = in[0], &w = in[1];
    const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    const int64_t O = w.shape[0], kh = w.shape[2], kw = w.shape[3];
    const int64_t Ho = (H + 2 * p - kh) / s + 1, Wo = (W + 2 * p - kw) / s + 1;
    RefResult r;
    r.shape = Shape{B, O, Ho, Wo};
    for (int64_t b = 0; b < B; ++b)
      for (int64_t o = 0; o < O; ++o)
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            double acc = in.size() > 2 ? in[2].v[(size_t)o] : 0.0;
            for (int64_t c = 0; c < C; ++c)
              for (int64_t i = 0; i < kh; ++i)
                for (int64_t j = 0; j < kw; ++j) {
                  const int64_t h = oh * s - p + i, ww = ow * s - p + j;
                  if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                  acc += at4(w, o, c, i, j) * at4(x, b, c, h, ww);
                }
            r.v.push_back(acc);
          }
    return r;
  };
}

// PyTorch's ConvTranspose2d as a scatter: y[b,o, h*s-p+i, w*s-p+j] += x[b,c,h,w] w[c,o,i,j], + bias.
RefFn conv_transpose2d_ref(int s, int p, int op) {
  return [s, p, op](const std::vector<HostTensor>& in) {
    const HostTensor &x = in[0], &w = in[1];
    const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    const int64_t O = w.shape[1], kh = w.shape[2], kw = w.shape[3];
    const int64_t Ho = (H - 1) * s - 2 * p + kh + op, Wo = (W - 1) * s - 2 * p + kw + op;
    RefResult r;
    r.shape = Shape{B, O, Ho, Wo};
    r.v.assign((size_t)(B * O * Ho * Wo), 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t o = 0; o < O; ++o) {
        double* y = r.v.data() + (b * O + o) * Ho * Wo;
        if (in.size() > 2)
          for (int64_t k = 0; k < Ho * Wo; ++k) y[k] = in[2].v[(size_t)o];
        for (int64_t c = 0; c < C; ++c)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t ww = 0; ww < W; ++ww)
              for (int64_t i = 0; i < kh; ++i)
                for (int64_t j = 0; j < kw; ++j) {
                  const int64_t oh = h * s - p + i, ow = ww * s - p + j;
                  if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                  y[oh * Wo + ow] += at4(x, b, c, h, ww) * at4(w, c, o, i, j);
                }
      }
    return r;
  };
}

RefFn upsample_ref(int s) {
  return [s](const std::vector<HostTensor>& in) {
    const HostTensor& x = in[0];
    const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    RefResult r;
    r.shape = Shape{B, C, H * s, W * s};
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H * s; ++h)
          for (int64_t w = 0; w < W * s; ++w) r.v.push_back(at4(x, b, c, h / s, w / s));
    return r;
  };
}

RefFn avg_pool_ref(int k, int s) {
  return [k, s](const std::vector<HostTensor>& in) {
    const HostTensor& x = in[0];
    const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    const int64_t Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
    RefResult r;
    r.shape = Shape{B, C, Ho, Wo};
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            double acc = 0;
            for (int i = 0; i < k; ++i)
              for (int j = 0; j < k; ++j) acc += at4(x, b, c, oh * s + i, ow * s + j);
            r.v.push_back(acc / (k * k));
          }
    return r;
  };
}

// x (B, C, H, W), w (O, C, kh, kw), optional bias (O).
OpRow conv2d_row(const std::string& name, Shape x, Shape w, bool bias, int s, int p) {
  OpRow row;
  row.name = name;
  row.inputs = {normal(x), normal(w)};
  if (bias) row.inputs.push_back(normal({w[0]}));
  row.op = [s, p](const std::vector<Tensor>& in) {
    return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), s, p);
  };
  row.ref = conv2d_ref(s, p);
  // Reductions: C*kh*kw (forward), O*kh*kw (dx), B*Ho*Wo (dw, db).
  const int64_t Ho = (x[2] + 2 * p - w[2]) / s + 1, Wo = (x[3] + 2 * p - w[3]) / s + 1;
  row.tol = reduction_tolerance(std::max({x[1] * w[2] * w[3], w[0] * w[2] * w[3], x[0] * Ho * Wo}));
  return row;
}

// x (B, C, H, W), w (C, O, kh, kw), optional bias (O).
OpRow conv_transpose2d_row(const std::string& name, Shape x, Shape w, bool bias, int s, int p, int op) {
  OpRow row;
  row.name = name;
  row.inputs = {normal(x), normal(w)};
  if (bias) row.inputs.push_back(normal({w[1]}));
  row.op = [s, p, op](const std::vector<Tensor>& in) {
    return conv_transpose2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), s, p, op);
  };
  row.ref = conv_transpose2d_ref(s, p, op);
  // Reductions: C*kh*kw (forward, dy-side im2col rows: O*kh*kw for dx), B*H*W (dw), B*Ho*Wo (db).
  const int64_t Ho = (x[2] - 1) * s - 2 * p + w[2] + op, Wo = (x[3] - 1) * s - 2 * p + w[3] + op;
  row.tol = reduction_tolerance(
      std::max({x[1] * w[2] * w[3], w[1] * w[2] * w[3], x[0] * x[2] * x[3], x[0] * Ho * Wo}));
  return row;
}

std::vector<OpRow> rows() {
  std::vector<OpRow> r;
  // conv2d: stride 1/2, padding 0/1, odd sizes, with and without bias, non-square kernel, 1x1.
  r.push_back(conv2d_row("conv2d x(2,3,7,5) w(4,3,3,3) bias s1 p0", {2, 3, 7, 5}, {4, 3, 3, 3}, true, 1, 0));
  r.push_back(conv2d_row("conv2d x(2,3,7,5) w(4,3,3,3) s1 p1", {2, 3, 7, 5}, {4, 3, 3, 3}, false, 1, 1));
  // 3x3, stride 1, padding 1: the direct kernels (kernels/conv3x3.h). Rows of 20 (two vectors of 16,
  // three of 8) and of 16 (exactly one, or two); channel counts past one register tile plus a tail;
  // odd heights (the 2-row tile's 1-row tail).
  r.push_back(conv2d_row("conv2d direct x(2,5,9,20) w(10,5,3,3) bias s1 p1", {2, 5, 9, 20}, {10, 5, 3, 3}, true, 1, 1));
  r.push_back(conv2d_row("conv2d direct x(3,4,7,16) w(9,4,3,3) s1 p1", {3, 4, 7, 16}, {9, 4, 3, 3}, false, 1, 1));
  r.push_back(conv2d_row("conv2d x(2,3,7,5) w(4,3,3,3) bias s2 p1", {2, 3, 7, 5}, {4, 3, 3, 3}, true, 2, 1));
  r.push_back(conv2d_row("conv2d x(2,3,7,5) w(4,3,3,3) s2 p0", {2, 3, 7, 5}, {4, 3, 3, 3}, false, 2, 0));
  r.push_back(conv2d_row("conv2d x(2,2,6,7) w(3,2,2,3) bias s2 p1", {2, 2, 6, 7}, {3, 2, 2, 3}, true, 2, 1));
  r.push_back(conv2d_row("conv2d 1x1 x(2,5,4,3) w(6,5,1,1) bias", {2, 5, 4, 3}, {6, 5, 1, 1}, true, 1, 0));
  r.push_back(conv2d_row("conv2d 1x1 s2 x(2,5,5,3) w(3,5,1,1)", {2, 5, 5, 3}, {3, 5, 1, 1}, false, 2, 0));
  // conv_transpose2d: the decoder upsampling 7 -> 14 (k3 s2 p1 op1, and k4 s2 p1), stride 1, 1x1.
  r.push_back(conv_transpose2d_row("conv_transpose2d x(2,4,7,7) w(4,3,3,3) bias s2 p1 op1 (7->14)", {2, 4, 7, 7},
                                   {4, 3, 3, 3}, true, 2, 1, 1));
  r.push_back(conv_transpose2d_row("conv_transpose2d x(2,3,7,7) w(3,2,4,4) s2 p1 (7->14)", {2, 3, 7, 7},
                                   {3, 2, 4, 4}, false, 2, 1, 0));
  r.push_back(conv_transpose2d_row("conv_transpose2d x(2,3,5,4) w(3,2,3,3) bias s1 p0", {2, 3, 5, 4},
                                   {3, 2, 3, 3}, true, 1, 0, 0));
  r.push_back(conv_transpose2d_row("conv_transpose2d x(2,3,5,4) w(3,2,3,2) s1 p1", {2, 3, 5, 4}, {3, 2, 3, 2},
                                   false, 1, 1, 0));
  r.push_back(conv_transpose2d_row("conv_transpose2d 1x1 x(2,5,3,4) w(5,2,1,1) bias", {2, 5, 3, 4},
                                   {5, 2, 1, 1}, true, 1, 0, 0));
  // upsample_nearest2d and avg_pool2d.
  {
    OpRow row;
    row.name = "upsample_nearest2d x(2,3,5,7) scale 2";
    row.inputs = {normal({2, 3, 5, 7})};
    row.op = [](const std::vector<Tensor>& in) { return upsample_nearest2d(in[0], 2); };
    row.ref = upsample_ref(2);
    r.push_back(row);
  }
  {
    OpRow row;
    row.name = "upsample_nearest2d x(1,2,3,2) scale 3";
    row.inputs = {normal({1, 2, 3, 2})};
    row.op = [](const std::vector<Tensor>& in) { return upsample_nearest2d(in[0], 3); };
    row.ref = upsample_ref(3);
    r.push_back(row);
  }
  {
    OpRow row;
    row.name = "avg_pool2d x(2,3,6,7) k2 s2";  // W = 7: the last column is in no window
    row.inputs = {normal({2, 3, 6, 7})};
    row.op = [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], 2, 2); };
    row.ref = avg_pool_ref(2, 2);
    r.push_back(row);
  }
  {
    OpRow row;
    row.name = "avg_pool2d x(2,3,5,7) k3 s1";  // overlapping windows
    row.inputs = {normal({2, 3, 5, 7})};
    row.op = [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], 3, 1); };
    row.ref = avg_pool_ref(3, 1);
    r.push_back(row);
  }
  return r;
}

double dot(const Tensor& a, const Tensor& b) {
  std::vector<float> x = a.to_vector(), y = b.to_vector();
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += (double)x[i] * (double)y[i];
  return s;
}

}  // namespace

TEST_CASE("op table: conv", "[ops]") { run_op_table(rows()); }

TEST_CASE("op table: conv cpu vs cuda", "[ops][cuda]") { run_op_table_cuda(rows()); }

TEST_CASE("conv_transpose2d is the adjoint of conv2d: <conv2d(x), y> = <x, conv_transpose2d(y)>", "[ops]") {
  NoGradGuard ng;
  Generator gen(7);
  struct Case { Shape x, w; int s, p; };
  for (const Case& c : {Case{{2, 3, 7, 7}, {4, 3, 3, 3}, 1, 1}, Case{{2, 3, 8, 6}, {5, 3, 3, 3}, 2, 1},
                        Case{{1, 2, 9, 7}, {3, 2, 4, 2}, 3, 0}}) {
    Tensor x = gen.randn(c.x), w = gen.randn(c.w);
    Tensor y_shape = conv2d(x, w, Tensor(), c.s, c.p);
    Tensor y = gen.randn(y_shape.shape());
    // output_padding recovers the rows a strided conv2d dropped, so the shapes match x.
    const int op = (int)((c.x[2] + 2 * c.p - c.w[2]) % c.s);
    const int opw = (int)((c.x[3] + 2 * c.p - c.w[3]) % c.s);
    Tensor xt = conv_transpose2d(y, w, Tensor(), c.s, c.p, op);
    INFO("x " << c.x << " w " << c.w << " stride " << c.s << " padding " << c.p);
    REQUIRE(op == opw);  // one output_padding serves both dims in these cases
    REQUIRE(xt.shape() == x.shape());
    const double lhs = dot(conv2d(x, w, Tensor(), c.s, c.p), y), rhs = dot(x, xt);
    REQUIRE(std::fabs(lhs - rhs) <= 1e-4 * (1 + std::fabs(lhs)));
  }
}

TEST_CASE("conv: decoder shapes match PyTorch", "[ops]") {
  NoGradGuard ng;
  // nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1): (B, 32, 7, 7) -> (B, 16, 14, 14)
  REQUIRE(conv_transpose2d(Tensor::zeros({4, 32, 7, 7}), Tensor::zeros({32, 16, 3, 3}), Tensor(), 2, 1, 1).shape() ==
          Shape{4, 16, 14, 14});
  // nn.Conv2d(1, 32, 3, stride=2, padding=1): (B, 1, 28, 28) -> (B, 32, 14, 14)
  REQUIRE(conv2d(Tensor::zeros({4, 1, 28, 28}), Tensor::zeros({32, 1, 3, 3}), Tensor(), 2, 1).shape() ==
          Shape{4, 32, 14, 14});
  REQUIRE(upsample_nearest2d(Tensor::zeros({2, 3, 7, 7}), 2).shape() == Shape{2, 3, 14, 14});
  REQUIRE(avg_pool2d(Tensor::zeros({2, 3, 14, 15}), 2, 2).shape() == Shape{2, 3, 7, 7});
}

TEST_CASE("conv: shape errors name the shapes", "[ops]") {
  using Catch::Matchers::Contains;
  Tensor x = Tensor::zeros({2, 3, 7, 5});
  REQUIRE_THROWS_AS(conv2d(x, Tensor::zeros({8, 4, 3, 3}), Tensor()), gt::Error);
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({8, 4, 3, 3}), Tensor()),
                      Contains("3 channels") && Contains("(8, 4, 3, 3)") && Contains("expects 4"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({8, 3, 3, 3}), Tensor::zeros({7})),
                      Contains("bias (7)") && Contains("(8, 3, 3, 3)"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({8, 3, 3, 3}), Tensor(), 0), Contains("stride"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({8, 3, 3, 3}), Tensor(), 1, -1), Contains("padding"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({8, 3, 9, 3}), Tensor()), Contains("(2, 3, 7, 5)"));
  REQUIRE_THROWS_WITH(conv2d(Tensor::zeros({3, 7, 5}), Tensor::zeros({8, 3, 3, 3}), Tensor()), Contains("4-D"));
  REQUIRE_THROWS_WITH(conv_transpose2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor(), 2, 1, 1),
                      Contains("3 channels") && Contains("(4, 2, 3, 3)"));
  REQUIRE_THROWS_WITH(conv_transpose2d(x, Tensor::zeros({3, 2, 3, 3}), Tensor(), 2, 1, 2),
                      Contains("output_padding"));
  REQUIRE_THROWS_WITH(conv_transpose2d(Tensor::zeros({1, 3, 1, 1}), Tensor::zeros({3, 2, 1, 1}), Tensor(), 1, 1),
                      Contains("output size"));
  REQUIRE_THROWS_WITH(upsample_nearest2d(x, 0), Contains("scale"));
  REQUIRE_THROWS_WITH(avg_pool2d(x, 6, 1), Contains("(2, 3, 7, 5)"));
  REQUIRE_THROWS_WITH(avg_pool2d(x, 2, 0), Contains("stride"));
}

// The direct 3x3 kernels (both forward variants: flat-plane tiles with AVX-512, row tiles otherwise)
// against im2col + GEMM (the general path, itself checked above) at the U-Net's sizes and at odd
// widths (31, 1: every lane of a flat tile masked on the edge taps), where a wrong tap, lane, mask
// or tile edge shows as an O(1) error. Tolerance: sums of up
// to B*H*W = 1568 terms of O(1) products in float32, in different orders.
TEST_CASE("conv3x3: direct kernels equal im2col + GEMM at U-Net sizes", "[ops]") {
  // H*W = 784, 196, 155, 6, 180, 25: the flat kernel's last tile holds 1, 1, 1, 1, 3 and 2 vectors;
  // the row tiles' 8-float vectors (AVX2): 4, 2, 4, 1, 3 and 1 per row. The last two are the U-Net's
  // conv_in and conv_out (1 input channel; 1 output channel, fewer than one weight-gradient tile).
  for (const auto& [B, C, H, W, O] : std::vector<std::array<int64_t, 5>>{{2, 32, 28, 28, 32}, {3, 20, 14, 14, 13},
                                                                        {2, 3, 5, 31, 17}, {2, 7, 6, 1, 9},
                                                                        {2, 5, 9, 20, 10}, {1, 3, 5, 5, 4},
                                                                        {2, 1, 28, 28, 32}, {2, 32, 28, 28, 1}}) {
    INFO("x (" << B << ", " << C << ", " << H << ", " << W << "), O = " << O);
    REQUIRE(conv3x3_applies(3, 3, 1, 1, W));
    Generator gen(11);
    const std::vector<float> x = gen.randn({B, C, H, W}).to_vector(), w = gen.randn({O, C, 3, 3}).to_vector(),
                             dy = gen.randn({B, O, H, W}).to_vector(), bias = gen.randn({O}).to_vector();
    const ColGeom cg{C, H, W, 3, 3, 1, 1, H, W};
    const int64_t CK = C * 9, L = H * W;
    std::vector<float> col((size_t)(B * CK * L));
    im2col_cpu(x.data(), B, cg, col.data());
    // Forward: y[b] = W col[b] + bias.
    std::vector<float> want((size_t)(B * O * L)), got(want.size(), 7.0f), wt((size_t)(CK * O));
    for (int64_t b = 0; b < B; ++b) gemm_cpu(false, false, O, L, CK, 1.f, w.data(), col.data() + b * CK * L, 0.f, want.data() + b * O * L);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t o = 0; o < O; ++o)
        for (int64_t l = 0; l < L; ++l) want[(size_t)((b * O + o) * L + l)] += bias[(size_t)o];
    conv3x3_weights_forward(w.data(), O, C, wt.data());
    conv3x3_cpu(x.data(), B, C, H, W, wt.data(), O, bias.data(), got.data(), false);
    for (size_t i = 0; i < want.size(); ++i) REQUIRE(got[i] == Approx(want[i]).margin(1e-4).epsilon(1e-4));
    // The row-tile kernel (the one used without AVX-512) on the same problem, from garbage.
    std::fill(got.begin(), got.end(), 7.0f);
    conv3x3_rows_cpu(x.data(), B, C, H, W, wt.data(), O, bias.data(), got.data(), false);
    for (size_t i = 0; i < want.size(); ++i) REQUIRE(got[i] == Approx(want[i]).margin(1e-4).epsilon(1e-4));
    // Input gradient: dx[b] = col2im(W^T dy[b]), accumulated onto 1.
    std::vector<float> dcol((size_t)(B * CK * L)), dx_want((size_t)(B * C * L), 1.0f), dx_got(dx_want), wtb((size_t)(CK * O));
    for (int64_t b = 0; b < B; ++b) gemm_cpu(true, false, CK, L, O, 1.f, w.data(), dy.data() + b * O * L, 0.f, dcol.data() + b * CK * L);
    col2im_cpu(dcol.data(), B, cg, dx_want.data(), true);
    conv3x3_weights_backward(w.data(), O, C, wtb.data());
    conv3x3_cpu(dy.data(), B, O, H, W, wtb.data(), C, nullptr, dx_got.data(), true);
    for (size_t i = 0; i < dx_want.size(); ++i) REQUIRE(dx_got[i] == Approx(dx_want[i]).margin(1e-4).epsilon(1e-4));
    std::fill(dx_got.begin(), dx_got.end(), 1.0f);
    conv3x3_rows_cpu(dy.data(), B, O, H, W, wtb.data(), C, nullptr, dx_got.data(), true);
    for (size_t i = 0; i < dx_want.size(); ++i) REQUIRE(dx_got[i] == Approx(dx_want[i]).margin(1e-4).epsilon(1e-4));
    // Weight gradient: dW = sum_b dy[b] col[b]^T, accumulated onto 0.5.
    std::vector<float> dw_want((size_t)(O * CK), 0.5f), dw_got(dw_want);
    for (int64_t b = 0; b < B; ++b) gemm_cpu(false, true, O, CK, L, 1.f, dy.data() + b * O * L, col.data() + b * CK * L, 1.f, dw_want.data());
    conv3x3_weight_grad_cpu(x.data(), dy.data(), B, C, H, W, O, dw_got.data());
    for (size_t i = 0; i < dw_want.size(); ++i) REQUIRE(dw_got[i] == Approx(dw_want[i]).margin(1e-3).epsilon(1e-4));
  }
  REQUIRE_FALSE(conv3x3_applies(3, 3, 2, 1, 28));   // stride 2: im2col path
  REQUIRE_FALSE(conv3x3_applies(3, 3, 1, 0, 28));   // no padding
  REQUIRE_FALSE(conv3x3_applies(3, 3, 1, 1, 33));   // wider than two vectors
  REQUIRE(conv3x3_weight_grad_applies(128, 256, 2));  // the U-Net's largest at channels 64: 9.4 MB per thread
  REQUIRE_FALSE(conv3x3_weight_grad_applies(512, 512, 2));  // 151 MB per thread: im2col + GEMM instead
}

TEST_CASE("col2im is the adjoint of im2col", "[ops]") {
  // <im2col(x), c> = <x, col2im(c)> for the strided, padded geometry, straight on the kernels.
  Generator gen(3);
  const ColGeom g{3, 7, 6, 3, 2, 2, 1, (7 + 2 - 3) / 2 + 1, (6 + 2 - 2) / 2 + 1};
  const int64_t B = 2, CKL = g.C * g.kh * g.kw * g.Ho * g.Wo;
  Tensor x = gen.randn({B, g.C, g.H, g.W}), c = gen.randn({B * CKL});
  Tensor col = Tensor::empty({B * CKL}), xt = Tensor::full({B, g.C, g.H, g.W}, 1.0f);
  im2col_cpu(x.data(), B, g, col.data());
  col2im_cpu(c.data(), B, g, xt.data(), /*accumulate=*/false);  // overwrites the 1s
  const double lhs = dot(col, c), rhs = dot(x, xt);
  REQUIRE(std::fabs(lhs - rhs) <= 1e-4 * (1 + std::fabs(lhs)));
}

TEST_CASE("conv2d: only inputs that require grad get a gradient", "[ops]") {
  // The same forward twice: once with every input a parameter, once with only the weight; the
  // weight's gradient must not change and the others must stay undefined.
  Generator gen(11);
  Tensor x = gen.randn({2, 3, 6, 5}), w = gen.randn({4, 3, 3, 3}), b = gen.randn({4});
  Tensor dy = gen.randn({2, 4, 3, 3});
  Tensor xa = x.clone().set_requires_grad(), wa = w.clone().set_requires_grad(), ba = b.clone().set_requires_grad();
  backward(conv2d(xa, wa, ba, 2, 1), dy);
  Tensor wb = w.clone().set_requires_grad();
  backward(conv2d(x, wb, b, 2, 1), dy);
  REQUIRE_FALSE(x.grad().defined());
  REQUIRE_FALSE(b.grad().defined());
  REQUIRE(wb.grad().to_vector() == wa.grad().to_vector());
  // Only the bias: its gradient is the per-channel sum of dy.
  Tensor bc = b.clone().set_requires_grad();
  backward(conv2d(x, w, bc, 2, 1), dy);
  std::vector<float> g = bc.grad().to_vector(), d = dy.to_vector();
  for (int o = 0; o < 4; ++o) {
    double s = 0;
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 9; ++k) s += d[(size_t)((n * 4 + o) * 9 + k)];
    REQUIRE(std::fabs(g[(size_t)o] - s) <= 1e-5 * (1 + std::fabs(s)));
  }
}

}  // namespace gt::test
