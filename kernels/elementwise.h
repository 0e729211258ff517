// elementwise.h: elementwise kernels — unary maps, binary ops with NumPy broadcasting, and the
// broadcast reduction (sum_to_shape) their backward passes need.
//
// Unary:   y_i = f(x_i; p)                      dx_i += dy_i * f'(x_i, y_i; p)
//   Neg        -x                               -1
//   Exp        e^x                              y
//   Log        log x                            1 / x
//   Sqrt       sqrt x                           1 / (2 y)
//   Square     x^2                              2 x
//   Pow        x^p                              p x^(p-1)          (0 when p == 0, even at x = 0)
//   Abs        |x|                              sign(x)            (subgradient 0 at 0)
//   Relu       max(x, 0)                        [x > 0]            (0 at 0)
//   LeakyRelu  x > 0 ? x : p x                  x > 0 ? 1 : p
//   Sigmoid    1 / (1 + e^-x)                   y (1 - y)
//   Tanh       tanh x                           1 - y^2
//   Silu       x s,  s = sigmoid(x)             s (1 + x (1 - s))
//   Softplus   max(x, 0) + log1p(e^-|x|)        sigmoid(x)         (never exponentiates a positive x)
//   AddScalar  x + p                            1
//   MulScalar  p x                              p
//   RsubScalar p - x                            -1
//   RdivScalar p / x                            -p / x^2 = -y / x
//
// Binary:  out = a op b, a and b broadcast to out's shape (NumPy rules: align from the right, a dim
// of size 1 or a missing leading dim stretches).
//   Add  a + b     d/da = 1      d/db = 1
//   Sub  a - b     d/da = 1      d/db = -1
//   Mul  a * b     d/da = b      d/db = a
//   Div  a / b     d/da = 1/b    d/db = -a / b^2
// The gradient of a broadcast operand is the out-shaped gradient summed over the dims it was
// stretched along: sum_to_shape.
//
// Each op is a functor (NegOp, AddOp, ...) holding its GT_HD scalar math, so the CPU loops and the
// CUDA kernels run the same code and the CPU tests cover the math of both. The kernels are
// templates over that functor, explicitly instantiated for every op listed in GT_UNARY_OPS /
// GT_BINARY_OPS.
//
//   gt::unary_forward_cpu<gt::SigmoidOp>(y, x, n, 0.f);
//   gt::unary_backward_cuda<gt::SigmoidOp>(dx, dy, nullptr, y, n, 0.f);  // sigmoid reads only y
//   gt::BroadcastPlan bp = gt::make_broadcast_plan({64, 128}, {128});     // a row-vector bias
//   gt::binary_forward_cpu<gt::AddOp>(out, a, b, bp);
//   gt::ReducePlan rp = gt::make_reduce_plan({64, 128}, {128});
//   gt::sum_to_shape_cpu(db, dout, rp, 1.f);                               // db (128) += column sums
//
// Pointers are dense row-major float32 buffers (device pointers for _cuda). CPU loops are
// parallel_for over kElementwiseGrain chunks and written so g++ -O3 vectorises their inner loops
// (all of the arithmetic ones; exp/log/tanh/pow/sqrt stay scalar libm calls, which gentape's flags
// — no -ffast-math, so no vector libm and errno-setting sqrt — do not vectorise).
// CUDA launchers queue grid-stride kernels on gt::cuda::stream(); they never synchronise, copy or
// cudaMalloc (sum_to_shape's partial sums come from Tensor::empty), and sum_to_shape adds in a
// fixed order, so every result is deterministic run to run.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/fastmath.h"
#include "core/host_device.h"
#include "core/tensor.h"

namespace gt {

// ---- shared scalar math ----

// The stable logistic: with e = exp(-|x|) <= 1, sigmoid(x) = 1/(1+e) for x >= 0 and e/(1+e) for
// x < 0, so nothing overflows; branch-free and fast_expf so CPU loops vectorise (core/fastmath.h).
GT_HD inline float sigmoid_f(float x) {
  const float e = fast_expf(-fabsf(x));
  const float s = 1.f / (1.f + e);
  return x >= 0.f ? s : e * s;
}

// ---- unary op functors: forward(x, p) and grad(x, y, p) = dy/dx ----
// kUsesX / kUsesY say which of x and y grad reads; backward kernels pass 0 for the other (its
// pointer may be null), so the tape saves only what the derivative needs.
#define GT_UNARY_OP(NAME, USES_X, USES_Y, FWD, GRAD)                                     \
  struct NAME {                                                                          \
    static constexpr bool kUsesX = USES_X, kUsesY = USES_Y;                              \
    static GT_HD float forward(float x, float p) { (void)p; return FWD; }                \
    static GT_HD float grad(float x, float y, float p) { (void)x; (void)y; (void)p; return GRAD; } \
  };

GT_UNARY_OP(NegOp, false, false, -x, -1.f)
GT_UNARY_OP(ExpOp, false, true, fast_expf(x), y)
GT_UNARY_OP(LogOp, true, false, logf(x), 1.f / x)
GT_UNARY_OP(SqrtOp, false, true, sqrtf(x), 0.5f / y)
GT_UNARY_OP(SquareOp, true, false, x * x, 2.f * x)
GT_UNARY_OP(PowOp, true, false, powf(x, p), p == 0.f ? 0.f : p * powf(x, p - 1.f))
GT_UNARY_OP(AbsOp, true, false, fabsf(x), x > 0.f ? 1.f : (x < 0.f ? -1.f : 0.f))
GT_UNARY_OP(ReluOp, true, false, x > 0.f ? x : 0.f, x > 0.f ? 1.f : 0.f)
GT_UNARY_OP(LeakyReluOp, true, false, x > 0.f ? x : p * x, x > 0.f ? 1.f : p)
GT_UNARY_OP(SigmoidOp, false, true, sigmoid_f(x), y * (1.f - y))
GT_UNARY_OP(TanhOp, false, true, tanhf(x), 1.f - y * y)
GT_UNARY_OP(SiluOp, true, false, x * sigmoid_f(x), sigmoid_f(x) * (1.f + x * (1.f - sigmoid_f(x))))
GT_UNARY_OP(SoftplusOp, true, false, (x > 0.f ? x : 0.f) + fast_log1pf(fast_expf(-fabsf(x))), sigmoid_f(x))
GT_UNARY_OP(AddScalarOp, false, false, x + p, 1.f)
GT_UNARY_OP(MulScalarOp, false, false, x * p, p)
GT_UNARY_OP(RsubScalarOp, false, false, p - x, -1.f)
GT_UNARY_OP(RdivScalarOp, true, true, p / x, -y / x)
#undef GT_UNARY_OP

#define GT_UNARY_OPS(X)                                                                       \
  X(NegOp) X(ExpOp) X(LogOp) X(SqrtOp) X(SquareOp) X(PowOp) X(AbsOp) X(ReluOp) X(LeakyReluOp) \
  X(SigmoidOp) X(TanhOp) X(SiluOp) X(SoftplusOp) X(AddScalarOp) X(MulScalarOp) X(RsubScalarOp) \
  X(RdivScalarOp)

// ---- binary op functors: forward(a, b), da(a, b) = d/da, db(a, b) = d/db ----
// kConstantGrad: both partials are constants, so backward needs neither a nor b and reduces dout
// directly (scaled by da / db) without an out-shaped temporary.
struct AddOp {
  static constexpr bool kConstantGrad = true;
  static GT_HD float forward(float a, float b) { return a + b; }
  static GT_HD float da(float, float) { return 1.f; }
  static GT_HD float db(float, float) { return 1.f; }
};
struct SubOp {
  static constexpr bool kConstantGrad = true;
  static GT_HD float forward(float a, float b) { return a - b; }
  static GT_HD float da(float, float) { return 1.f; }
  static GT_HD float db(float, float) { return -1.f; }
};
struct MulOp {
  static constexpr bool kConstantGrad = false;
  static GT_HD float forward(float a, float b) { return a * b; }
  static GT_HD float da(float, float b) { return b; }
  static GT_HD float db(float a, float) { return a; }
};
struct DivOp {
  static constexpr bool kConstantGrad = false;
  static GT_HD float forward(float a, float b) { return a / b; }
  static GT_HD float da(float, float b) { return 1.f / b; }
  static GT_HD float db(float a, float b) { return -a / (b * b); }
};
#define GT_BINARY_OPS(X) X(AddOp) X(SubOp) X(MulOp) X(DivOp)

// ---- broadcasting ----

// The shape a op b broadcasts to; false when the shapes are incompatible (the op names them).
bool broadcast_shapes(const Shape& a, const Shape& b, Shape* out);

// How out = a op b walks its operands. The out shape is simplified first: size-1 dims are dropped
// and neighbouring dims merged wherever both operands stay contiguous across them, so
// (2, 3, 5, 7) * (1, 3, 1, 1) becomes (2, 3, 35) with b strides (0, 1, 0). The simplified layout
// selects a fast path:
//   Same                 a, b and out all (n)
//   ScalarA / ScalarB    that operand has one element
//   RowA / RowB          out (M, N), that operand (N):  a (M, N) + b (N), a bias
//   ChannelA / ChannelB  out (P, C, K), that operand (C): x (B, C, H, W) * s (1, C, 1, 1)
//   General              anything else, up to 8 dims, by strides (an outer product (M, 1) * (1, N))
struct BroadcastPlan {
  enum Kind : int { Same, ScalarA, ScalarB, RowA, RowB, ChannelA, ChannelB, General };
  Kind kind = Same;
  int64_t n = 0;  // out elements
  int ndim = 0;   // simplified dims (>= 1)
  int64_t shape[Shape::kMaxDims] = {};
  int64_t stride_a[Shape::kMaxDims] = {};  // element strides; 0 where that operand is broadcast
  int64_t stride_b[Shape::kMaxDims] = {};
};
// a and b must be broadcast-compatible (check with broadcast_shapes first; throws otherwise).
BroadcastPlan make_broadcast_plan(const Shape& a, const Shape& b);

// How an out-shaped gradient g sums back to the shape x of a broadcast operand. g's dims split
// into kept ones (present in x) and reduced ones (stretched in x); neighbouring dims of the same
// kind are merged and size-1 dims dropped. x element j (row-major over the kept dims) receives
// the sum of g over every reduced index r:  g[kept_offset(j) + reduced_offset(r)].
struct ReducePlan {
  int64_t n_out = 1;  // x's elements
  int64_t n_red = 1;  // g elements summed into each (1: x has out's layout, nothing to reduce)
  int nk = 0, nr = 0;
  int64_t kshape[Shape::kMaxDims] = {}, kstride[Shape::kMaxDims] = {};  // kept dims, g strides
  int64_t rshape[Shape::kMaxDims] = {}, rstride[Shape::kMaxDims] = {};  // reduced dims, g strides
  bool inner_kept = true;  // g's innermost dim is kept: contiguous in both g and x
};
// x_shape must broadcast to out_shape (throws otherwise, naming both).
ReducePlan make_reduce_plan(const Shape& out_shape, const Shape& x_shape);

// ---- per-thread bodies of the CUDA kernels, GT_HD so the CPU tests cover them ----
namespace detail {

// Row-major index `flat` over nd dims (shape, stride) -> element offset.
GT_HD inline int64_t strided_offset(int64_t flat, int nd, const int64_t* shape, const int64_t* stride) {
  int64_t off = 0;
  for (int d = nd - 1; d >= 0; --d) {
    off += (flat % shape[d]) * stride[d];
    flat /= shape[d];
  }
  return off;
}

// Maps out element i to the elements ia, ib of a and b it reads.
struct SameIndex {
  GT_HD void map(int64_t i, int64_t& ia, int64_t& ib) const { ia = ib = i; }
};
// A broadcast operand reads element (i / div) % mod: a scalar (div 1, mod 1), a row vector of N
// (div 1, mod N), a per-channel vector of C over planes of K (div K, mod C). mod 0: not broadcast.
struct PatternIndex {
  int64_t div_a = 1, mod_a = 0, div_b = 1, mod_b = 0;
  GT_HD void map(int64_t i, int64_t& ia, int64_t& ib) const {
    ia = mod_a ? (i / div_a) % mod_a : i;
    ib = mod_b ? (i / div_b) % mod_b : i;
  }
};
// Div/mod over every simplified dim.
struct GeneralIndex {
  BroadcastPlan p;
  GT_HD void map(int64_t i, int64_t& ia, int64_t& ib) const {
    ia = ib = 0;
    for (int d = p.ndim - 1; d >= 0; --d) {
      const int64_t c = i % p.shape[d];
      i /= p.shape[d];
      ia += c * p.stride_a[d];
      ib += c * p.stride_b[d];
    }
  }
};
// The PatternIndex of a Scalar/Row/Channel plan (the others use SameIndex or GeneralIndex).
inline PatternIndex pattern_index(const BroadcastPlan& p) {
  PatternIndex pi;
  switch (p.kind) {
    case BroadcastPlan::ScalarA: pi.mod_a = 1; break;
    case BroadcastPlan::ScalarB: pi.mod_b = 1; break;
    case BroadcastPlan::RowA: pi.mod_a = p.shape[1]; break;
    case BroadcastPlan::RowB: pi.mod_b = p.shape[1]; break;
    case BroadcastPlan::ChannelA: pi.div_a = p.shape[2]; pi.mod_a = p.shape[1]; break;
    case BroadcastPlan::ChannelB: pi.div_b = p.shape[2]; pi.mod_b = p.shape[1]; break;
    default: break;
  }
  return pi;
}

// sum_to_shape, one thread's share: the sum of g over reduced indices [r0, r1) for x element j,
// walking r by its innermost reduced index and recomputing the full offset only on a carry.
// Requires p.nr >= 1.
GT_HD inline float reduce_range_sum(const float* g, const ReducePlan& p, int64_t j, int64_t r0, int64_t r1) {
  const int rl = p.nr - 1;
  const int64_t base = strided_offset(j, p.nk, p.kshape, p.kstride);
  int64_t pos = r0 % p.rshape[rl], off = strided_offset(r0, p.nr, p.rshape, p.rstride);
  float s = 0.f;
  for (int64_t r = r0; r < r1; ++r) {
    s += g[base + off];
    if (++pos < p.rshape[rl]) {
      off += p.rstride[rl];
    } else if (r + 1 < r1) {
      pos = 0;
      off = strided_offset(r + 1, p.nr, p.rshape, p.rstride);
    }
  }
  return s;
}

}  // namespace detail

// ---- CPU kernels ----

// y (n) = f(x)
template <class Op>
void unary_forward_cpu(float* y, const float* x, int64_t n, float p);
// dx (n) += dy * f'(x, y) (overwrite: dx = ..., its old contents never read); x (n) or null unless
// Op::kUsesX, y (n) or null unless Op::kUsesY
template <class Op>
void unary_backward_cpu(float* dx, const float* dy, const float* x, const float* y, int64_t n, float p,
                        bool overwrite = false);

// out (plan.n) = a op b;  a and b of the shapes the plan was made from
template <class Op>
void binary_forward_cpu(float* out, const float* a, const float* b, const BroadcastPlan& plan);
// g (plan.n) = dout * d(a op b)/d(side)  (side 0: a, 1: b), or += when accumulate. dout (plan.n).
// With accumulate, g is the gradient buffer of an operand that was not broadcast (same numel as out);
// otherwise g is an out-shaped temporary for sum_to_shape.
template <class Op>
void binary_backward_cpu(float* g, const float* dout, const float* a, const float* b,
                         const BroadcastPlan& plan, int side, bool accumulate);

// dx (x shape) += scale * (g (out shape) summed over the plan's reduced dims)
void sum_to_shape_cpu(float* dx, const float* g, const ReducePlan& plan, float scale);

// ---- CUDA kernels (device pointers; same contracts) ----
template <class Op>
void unary_forward_cuda(float* y, const float* x, int64_t n, float p);
template <class Op>
void unary_backward_cuda(float* dx, const float* dy, const float* x, const float* y, int64_t n, float p);
template <class Op>
void binary_forward_cuda(float* out, const float* a, const float* b, const BroadcastPlan& plan);
template <class Op>
void binary_backward_cuda(float* g, const float* dout, const float* a, const float* b,
                          const BroadcastPlan& plan, int side, bool accumulate);
void sum_to_shape_cuda(float* dx, const float* g, const ReducePlan& plan, float scale);

}  // namespace gt
