// elementwise.cpp: CPU elementwise kernels and the broadcast / reduce plans shared with CUDA.
//
//   unary:      y = f(x),            dx += dy * f'(x, y)
//   binary:     out = a op b,        g = dout * d(a op b)/da  (or /db), a and b broadcast
//   reduction:  dx += scale * sum over the broadcast dims of g
//
// The math lives in kernels/elementwise.h (GT_HD functors); this file only walks memory. Every
// inner loop is a plain unit-stride (or broadcast-constant) loop over a chunk of a parallel_for, so
// g++ -O3 -march=native vectorises it; broadcasting is resolved outside the inner loop.
#include "kernels/elementwise.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/parallel.h"

namespace gt {

// ---------------------------------------------------------------- plans

bool broadcast_shapes(const Shape& a, const Shape& b, Shape* out) {
  const int n = std::max(a.size(), b.size());
  std::vector<int64_t> d((size_t)n);
  for (int i = 0; i < n; ++i) {  // i counts from the right
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1) return false;
    d[(size_t)(n - 1 - i)] = da == 1 ? db : da;
  }
  *out = Shape(d);
  return true;
}

namespace {
// Contiguous element strides of `s` aligned to an n-dim out shape; 0 for a missing or size-1 dim
// (a broadcast one).
void aligned_strides(const Shape& s, int n, int64_t* stride) {
  int64_t st = 1;
  for (int i = 0; i < n; ++i) {  // from the right
    const int d = n - 1 - i;
    const int64_t sz = i < s.size() ? s[s.size() - 1 - i] : 1;
    stride[d] = sz == 1 ? 0 : st;
    st *= sz;
  }
}
}  // namespace

BroadcastPlan make_broadcast_plan(const Shape& a, const Shape& b) {
  Shape out;
  GT_CHECK(broadcast_shapes(a, b, &out), "shapes " << a << " and " << b << " cannot be broadcast");
  BroadcastPlan p;
  p.n = out.numel();
  const int n = out.size();
  int64_t sa[Shape::kMaxDims], sb[Shape::kMaxDims];
  aligned_strides(a, n, sa);
  aligned_strides(b, n, sb);
  // Drop size-1 out dims, then merge dim d into the kept dim to its right when both operands are
  // contiguous across the pair (stride[d] == stride[d+1] * shape[d+1], which also holds for two
  // broadcast dims: 0 == 0 * shape).
  int nd = 0;
  for (int d = 0; d < n; ++d) {
    if (out[d] == 1) continue;
    if (nd > 0) {
      const int k = nd - 1;
      // k (maybe already merged) keeps the stride of its innermost dim, the one next to d
      if (p.stride_a[k] == sa[d] * out[d] && p.stride_b[k] == sb[d] * out[d]) {
        p.shape[k] *= out[d];
        p.stride_a[k] = sa[d];
        p.stride_b[k] = sb[d];
        continue;
      }
    }
    p.shape[nd] = out[d];
    p.stride_a[nd] = sa[d];
    p.stride_b[nd] = sb[d];
    ++nd;
  }
  if (nd == 0) {  // one element (or a shape-() result): a single same-layout element
    nd = 1;
    p.shape[0] = p.n;
    p.stride_a[0] = p.stride_b[0] = 1;
  }
  p.ndim = nd;
  const int64_t* A = p.stride_a;
  const int64_t* B = p.stride_b;
  if (nd == 1) {
    p.kind = A[0] == 0 ? BroadcastPlan::ScalarA : B[0] == 0 ? BroadcastPlan::ScalarB : BroadcastPlan::Same;
  } else if (nd == 2 && A[0] == p.shape[1] && A[1] == 1 && B[0] == 0 && B[1] == 1) {
    p.kind = BroadcastPlan::RowB;
  } else if (nd == 2 && B[0] == p.shape[1] && B[1] == 1 && A[0] == 0 && A[1] == 1) {
    p.kind = BroadcastPlan::RowA;
  } else if (nd == 3 && A[2] == 1 && A[1] == p.shape[2] && B[0] == 0 && B[1] == 1 && B[2] == 0) {
    p.kind = BroadcastPlan::ChannelB;
  } else if (nd == 3 && B[2] == 1 && B[1] == p.shape[2] && A[0] == 0 && A[1] == 1 && A[2] == 0) {
    p.kind = BroadcastPlan::ChannelA;
  } else {
    p.kind = BroadcastPlan::General;
  }
  return p;
}

ReducePlan make_reduce_plan(const Shape& out_shape, const Shape& x_shape) {
  Shape check;
  GT_CHECK(x_shape.size() <= out_shape.size() && broadcast_shapes(out_shape, x_shape, &check) &&
               check == out_shape,
           "sum_to_shape: shape " << x_shape << " does not broadcast to " << out_shape);
  ReducePlan p;
  p.n_out = x_shape.numel();
  p.n_red = p.n_out == 0 ? 0 : out_shape.numel() / p.n_out;
  const int n = out_shape.size();
  int64_t gstride[Shape::kMaxDims];
  int64_t st = 1;
  for (int d = n - 1; d >= 0; --d) {
    gstride[d] = st;
    st *= out_shape[d];
  }
  const int off = n - x_shape.size();
  int last = -1;  // kind of the previous kept dim: 0 kept, 1 reduced
  for (int d = 0; d < n; ++d) {
    if (out_shape[d] == 1) continue;
    const bool reduced = d < off || x_shape[d - off] == 1;
    // Adjacent dims of g are contiguous once size-1 dims are gone; adjacent kept dims are also
    // contiguous in x (the reduced dims are absent there), so same-kind neighbours merge.
    if (reduced) {
      if (last == 1) {
        p.rshape[p.nr - 1] *= out_shape[d];
        p.rstride[p.nr - 1] = gstride[d];
      } else {
        p.rshape[p.nr] = out_shape[d];
        p.rstride[p.nr++] = gstride[d];
      }
    } else {
      if (last == 0) {
        p.kshape[p.nk - 1] *= out_shape[d];
        p.kstride[p.nk - 1] = gstride[d];
      } else {
        p.kshape[p.nk] = out_shape[d];
        p.kstride[p.nk++] = gstride[d];
      }
    }
    last = reduced ? 1 : 0;
  }
  p.inner_kept = last != 1;
  return p;
}

// ---------------------------------------------------------------- unary

template <class Op>
void unary_forward_cpu(float* y, const float* x, int64_t n, float p) {
  parallel_for(n, kElementwiseGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = Op::forward(x[i], p);
  });
}

template <class Op>
void unary_backward_cpu(float* dx, const float* dy, const float* x, const float* y, int64_t n, float p,
                        bool overwrite) {
  parallel_for(n, kElementwiseGrain, [&](int64_t s, int64_t e) {
    if (overwrite) {
      for (int64_t i = s; i < e; ++i) dx[i] = dy[i] * Op::grad(Op::kUsesX ? x[i] : 0.f, Op::kUsesY ? y[i] : 0.f, p);
    } else {
      for (int64_t i = s; i < e; ++i) dx[i] += dy[i] * Op::grad(Op::kUsesX ? x[i] : 0.f, Op::kUsesY ? y[i] : 0.f, p);
    }
  });
}

// ---------------------------------------------------------------- binary

namespace {

// Calls body(i, ia, ib) for every out element i, ia and ib being the elements of a and b it reads.
// Each fast path keeps the innermost loop unit-stride in i with ia, ib either i, a constant or a
// unit-stride counter, which the vectoriser handles.
template <class Body>
void for_each_broadcast(const BroadcastPlan& p, Body body) {
  const int64_t n = p.n;
  if (n == 0) return;
  switch (p.kind) {
    case BroadcastPlan::Same:
      parallel_for(n, kElementwiseGrain, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) body(i, i, i);
      });
      return;
    case BroadcastPlan::ScalarA:
      parallel_for(n, kElementwiseGrain, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) body(i, (int64_t)0, i);
      });
      return;
    case BroadcastPlan::ScalarB:
      parallel_for(n, kElementwiseGrain, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) body(i, i, (int64_t)0);
      });
      return;
    case BroadcastPlan::RowA:
    case BroadcastPlan::RowB: {  // out (M, N), the row operand (N)
      const int64_t M = p.shape[0], N = p.shape[1];
      const bool row_a = p.kind == BroadcastPlan::RowA;
      parallel_for(M, std::max<int64_t>(1, kElementwiseGrain / N), [&](int64_t s, int64_t e) {
        for (int64_t r = s; r < e; ++r) {
          const int64_t base = r * N;
          if (row_a) {
            for (int64_t c = 0; c < N; ++c) body(base + c, c, base + c);
          } else {
            for (int64_t c = 0; c < N; ++c) body(base + c, base + c, c);
          }
        }
      });
      return;
    }
    case BroadcastPlan::ChannelA:
    case BroadcastPlan::ChannelB: {  // out (P, C, K), the channel operand (C)
      const int64_t C = p.shape[1], K = p.shape[2];
      const bool chan_a = p.kind == BroadcastPlan::ChannelA;
      parallel_for(p.shape[0] * C, std::max<int64_t>(1, kElementwiseGrain / K), [&](int64_t s, int64_t e) {
        for (int64_t q = s; q < e; ++q) {  // q = (p, c): one contiguous plane of K elements
          const int64_t base = q * K, c = q % C;
          if (chan_a) {
            for (int64_t k = 0; k < K; ++k) body(base + k, c, base + k);
          } else {
            for (int64_t k = 0; k < K; ++k) body(base + k, base + k, c);
          }
        }
      });
      return;
    }
    case BroadcastPlan::General: {
      const int nd = p.ndim, last = nd - 1;
      const int64_t L = p.shape[last], la = p.stride_a[last], lb = p.stride_b[last];
      parallel_for(n, kElementwiseGrain, [&](int64_t s, int64_t e) {
        // Position of element s: its index along every dim and its offsets in a and b.
        int64_t idx[Shape::kMaxDims];
        int64_t oa = 0, ob = 0, rem = s;
        for (int d = last; d >= 0; --d) {
          idx[d] = rem % p.shape[d];
          rem /= p.shape[d];
          oa += idx[d] * p.stride_a[d];
          ob += idx[d] * p.stride_b[d];
        }
        int64_t i = s;
        while (i < e) {
          // A run along the innermost dim, where la and lb are 0 (broadcast) or 1: one loop per
          // case, so each is unit-stride or constant for the vectoriser.
          const int64_t len = std::min(e - i, L - idx[last]);
          if (la && lb) {
            for (int64_t k = 0; k < len; ++k) body(i + k, oa + k, ob + k);
          } else if (la) {
            for (int64_t k = 0; k < len; ++k) body(i + k, oa + k, ob);
          } else if (lb) {
            for (int64_t k = 0; k < len; ++k) body(i + k, oa, ob + k);
          } else {
            for (int64_t k = 0; k < len; ++k) body(i + k, oa, ob);
          }
          i += len;
          oa += len * la;
          ob += len * lb;
          idx[last] += len;
          for (int d = last; d > 0 && idx[d] == p.shape[d]; --d) {  // carry
            oa += p.stride_a[d - 1] - p.shape[d] * p.stride_a[d];
            ob += p.stride_b[d - 1] - p.shape[d] * p.stride_b[d];
            idx[d] = 0;
            ++idx[d - 1];
          }
        }
      });
      return;
    }
  }
}

}  // namespace

template <class Op>
void binary_forward_cpu(float* out, const float* a, const float* b, const BroadcastPlan& plan) {
  for_each_broadcast(plan, [=](int64_t i, int64_t ia, int64_t ib) { out[i] = Op::forward(a[ia], b[ib]); });
}

template <class Op>
void binary_backward_cpu(float* g, const float* dout, const float* a, const float* b,
                         const BroadcastPlan& plan, int side, bool accumulate) {
  // d(a op b)/da = Op::da(a, b), d(a op b)/db = Op::db(a, b), times the incoming gradient.
  if (side == 0 && accumulate) {
    for_each_broadcast(plan, [=](int64_t i, int64_t ia, int64_t ib) { g[i] += dout[i] * Op::da(a[ia], b[ib]); });
  } else if (side == 0) {
    for_each_broadcast(plan, [=](int64_t i, int64_t ia, int64_t ib) { g[i] = dout[i] * Op::da(a[ia], b[ib]); });
  } else if (accumulate) {
    for_each_broadcast(plan, [=](int64_t i, int64_t ia, int64_t ib) { g[i] += dout[i] * Op::db(a[ia], b[ib]); });
  } else {
    for_each_broadcast(plan, [=](int64_t i, int64_t ia, int64_t ib) { g[i] = dout[i] * Op::db(a[ia], b[ib]); });
  }
}

// ---------------------------------------------------------------- sum_to_shape

namespace {

using detail::strided_offset;

// Sum of g[base + reduced_offset(r)] for r in [r0, r1), when g's innermost dim is reduced (so the
// innermost reduced dim has stride 1): contiguous runs, each an omp-simd reduction.
inline float sum_reduced_range(const float* g, int64_t base, const ReducePlan& p, int64_t r0, int64_t r1) {
  const int last = p.nr - 1;
  const int64_t L = p.rshape[last];
  float total = 0.f;
  int64_t r = r0;
  while (r < r1) {
    const int64_t pos = r % L;
    const int64_t len = std::min(r1 - r, L - pos);
    const float* src = g + base + strided_offset(r / L, last, p.rshape, p.rstride) + pos;
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t k = 0; k < len; ++k) acc += src[k];
    total += acc;
    r += len;
  }
  return total;
}

// Columns summed together when g's innermost dim is kept: a stack accumulator of this many floats.
constexpr int64_t kColumnBlock = 64;

// Reduced-index chunks a reduction is split into when it has too few outputs to keep the threads
// busy. It depends on the sizes only, never on the thread count, so results are reproducible.
int64_t reduce_chunks(const ReducePlan& p, int64_t units) {
  const int64_t work = p.n_out * p.n_red;
  if (units >= 8 || work < 4 * kElementwiseGrain) return 1;
  return std::min<int64_t>({16, work / (2 * kElementwiseGrain), p.n_red});
}

}  // namespace

void sum_to_shape_cpu(float* dx, const float* g, const ReducePlan& p, float scale) {
  if (p.n_out == 0 || p.n_red == 0) return;  // an empty sum adds nothing
  if (p.n_red == 1) {  // x has out's layout: a plain axpy
    parallel_for(p.n_out, kElementwiseGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) dx[i] += scale * g[i];
    });
    return;
  }
  if (p.inner_kept) {
    // x's innermost dim (L columns, contiguous in g and x) stays; every reduced index r adds one
    // row segment of g. Work unit: (outer kept index q, column block, reduced chunk).
    const int kl = p.nk - 1;
    const int64_t L = p.kshape[kl], Q = p.n_out / L;
    const int64_t CB = (L + kColumnBlock - 1) / kColumnBlock;
    const int64_t R = reduce_chunks(p, Q * CB);
    Tensor partial = R > 1 ? Tensor::empty(Shape{R, p.n_out}) : Tensor();
    float* part = R > 1 ? partial.data() : nullptr;
    const int64_t unit_work = std::max<int64_t>(1, p.n_red / R * std::min(L, kColumnBlock));
    const int rl = p.nr - 1;
    parallel_for(Q * CB * R, std::max<int64_t>(1, kElementwiseGrain / unit_work), [&](int64_t s, int64_t e) {
      for (int64_t u = s; u < e; ++u) {
        const int64_t rc = u % R, cb = (u / R) % CB, q = u / (R * CB);
        const int64_t c0 = cb * kColumnBlock, nc = std::min(kColumnBlock, L - c0);
        const int64_t r0 = p.n_red * rc / R, r1 = p.n_red * (rc + 1) / R;
        const int64_t base = strided_offset(q, kl, p.kshape, p.kstride) + c0;
        float acc[kColumnBlock] = {};
        // Walk r by its innermost reduced index, recomputing the full offset only on a carry.
        int64_t pos = r0 % p.rshape[rl], off = strided_offset(r0, p.nr, p.rshape, p.rstride);
        for (int64_t r = r0; r < r1; ++r) {
          const float* src = g + base + off;
          for (int64_t c = 0; c < nc; ++c) acc[c] += src[c];
          if (++pos < p.rshape[rl]) {
            off += p.rstride[rl];
          } else if (r + 1 < r1) {
            pos = 0;
            off = strided_offset(r + 1, p.nr, p.rshape, p.rstride);
          }
        }
        const int64_t j0 = q * L + c0;
        if (part) {
          for (int64_t c = 0; c < nc; ++c) part[rc * p.n_out + j0 + c] = acc[c];
        } else {
          for (int64_t c = 0; c < nc; ++c) dx[j0 + c] += scale * acc[c];
        }
      }
    });
    if (part) {
      for (int64_t j = 0; j < p.n_out; ++j) {
        float s = 0.f;
        for (int64_t rc = 0; rc < R; ++rc) s += part[rc * p.n_out + j];
        dx[j] += scale * s;
      }
    }
    return;
  }
  // g's innermost dim is reduced: each x element sums contiguous runs of g.
  const int64_t R = reduce_chunks(p, p.n_out);
  Tensor partial = R > 1 ? Tensor::empty(Shape{R, p.n_out}) : Tensor();
  float* part = R > 1 ? partial.data() : nullptr;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, p.n_red / R));
  parallel_for(p.n_out * R, grain, [&](int64_t s, int64_t e) {
    for (int64_t u = s; u < e; ++u) {
      const int64_t rc = u % R, j = u / R;
      const int64_t base = strided_offset(j, p.nk, p.kshape, p.kstride);
      const float v = sum_reduced_range(g, base, p, p.n_red * rc / R, p.n_red * (rc + 1) / R);
      if (part) {
        part[rc * p.n_out + j] = v;
      } else {
        dx[j] += scale * v;
      }
    }
  });
  if (part) {
    for (int64_t j = 0; j < p.n_out; ++j) {
      float s = 0.f;
      for (int64_t rc = 0; rc < R; ++rc) s += part[rc * p.n_out + j];
      dx[j] += scale * s;
    }
  }
}

// ---------------------------------------------------------------- instantiations

#define GT_INSTANTIATE_UNARY(OP)                                                         \
  template void unary_forward_cpu<OP>(float*, const float*, int64_t, float);             \
  template void unary_backward_cpu<OP>(float*, const float*, const float*, const float*, int64_t, float, bool);
GT_UNARY_OPS(GT_INSTANTIATE_UNARY)
#undef GT_INSTANTIATE_UNARY

#define GT_INSTANTIATE_BINARY(OP)                                                                  \
  template void binary_forward_cpu<OP>(float*, const float*, const float*, const BroadcastPlan&); \
  template void binary_backward_cpu<OP>(float*, const float*, const float*, const float*,         \
                                        const BroadcastPlan&, int, bool);
GT_BINARY_OPS(GT_INSTANTIATE_BINARY)
#undef GT_INSTANTIATE_BINARY

}  // namespace gt
