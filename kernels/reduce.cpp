// reduce.cpp: CPU reductions (kernels/reduce.h has the equations).
//
// Work is split with parallel_for over outputs (forward) or input elements (backward); each output
// is produced by exactly one thread, so no reduction crosses threads except the full sum, whose
// per-block partials are combined in a fixed order. Results therefore do not depend on the number
// of threads.
//
// Layout choice for inner > 1: a thread owns a run of outputs (o, i0..i1) and streams the n rows
// x[o, k, i0..i1] in order, keeping at most kTile running values (sum / max / (max, sum)) on the
// stack. The inner loop runs over contiguous i, so it vectorises and x is read once, in order.
#include "kernels/reduce.h"

#include <algorithm>
#include <vector>

#include "kernels/parallel.h"

namespace gt {

namespace {

// Block size of the full sum: each block is summed on its own (8 double lanes), then the blocks are
// added in index order. Fixed, so the rounding does not depend on the thread count.
constexpr int64_t kSumBlock = 8192;
constexpr int kLanes = 8;
// Outputs processed together when inner > 1: 512 floats of running state stay in L1.
constexpr int64_t kTile = 512;

// Grain (in outputs) for a loop whose every output costs `work` elements.
int64_t grain_for(int64_t work) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, work)); }

double block_sum_double(const float* x, int64_t n) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += (double)x[i + l];
  for (; i < n; ++i) acc[i % kLanes] += (double)x[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Contiguous float sum in 8 interleaved lanes: vectorises, and each lane adds only n/8 terms, so
// the rounding error is ~8x smaller than one running sum's.
float lane_sum(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l];
  for (; i < n; ++i) acc[i % kLanes] += x[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Calls fn(o, i0, i1) for the runs of outputs [j0, j1) of an (outer, inner) array, each run within
// one outer row and at most kTile long.
template <class F>
void for_output_tiles(int64_t j0, int64_t j1, int64_t inner, F&& fn) {
  int64_t o = j0 / inner, i = j0 % inner;
  for (int64_t j = j0; j < j1;) {
    int64_t len = std::min({inner - i, j1 - j, kTile});
    fn(o, i, i + len);
    j += len;
    i += len;
    if (i == inner) {
      i = 0;
      ++o;
    }
  }
}

// Calls fn(o, k, i0, i1) for the runs of elements [j0, j1) of an (outer, n, inner) array, each run
// within one (o, k) row; the row counters are stepped, not divided out, per run.
template <class F>
void for_element_runs(int64_t j0, int64_t j1, int64_t n, int64_t inner, F&& fn) {
  int64_t r = j0 / inner, i = j0 % inner;
  int64_t o = r / n, k = r % n;
  for (int64_t j = j0; j < j1;) {
    int64_t len = std::min(inner - i, j1 - j);
    fn(o, k, i, i + len);
    j += len;
    i = 0;
    if (++k == n) {
      k = 0;
      ++o;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------- sum of all elements
void sum_all_forward_cpu(float* out, const float* x, int64_t n, float scale) {
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  if (blocks <= 1) {
    out[0] = (float)(block_sum_double(x, n) * (double)scale);
    return;
  }
  std::vector<double> partial((size_t)blocks);
  parallel_for(blocks, grain_for(kSumBlock), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      partial[(size_t)b] = block_sum_double(x + b * kSumBlock, std::min(kSumBlock, n - b * kSumBlock));
  });
  double s = 0;
  for (double p : partial) s += p;
  out[0] = (float)(s * (double)scale);
}

// d(scale * sum x)/dx_i = scale
void sum_all_backward_cpu(float* dx, const float* dout, int64_t n, float scale) {
  const float g = scale * dout[0];
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] += g;
  });
}

// ---------------------------------------------------------------- sum / mean along a dim
void sum_dim_forward_cpu(float* out, const float* x, int64_t outer, int64_t n, int64_t inner, float scale) {
  if (inner == 1) {
    parallel_for(outer, grain_for(n), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) out[o] = scale * lane_sum(x + o * n, n);
    });
    return;
  }
  parallel_for(outer * inner, grain_for(n), [&](int64_t j0, int64_t j1) {
    for_output_tiles(j0, j1, inner, [&](int64_t o, int64_t i0, int64_t i1) {
      float acc[kTile];
      const int64_t len = i1 - i0;
      const float* xo = x + o * n * inner + i0;
      for (int64_t i = 0; i < len; ++i) acc[i] = 0.f;  // only len: tiles are short when inner is small
      for (int64_t k = 0; k < n; ++k)
        for (int64_t i = 0; i < len; ++i) acc[i] += xo[k * inner + i];
      float* y = out + o * inner + i0;
      for (int64_t i = 0; i < len; ++i) y[i] = scale * acc[i];
    });
  });
}

// d y[o,i] / d x[o,k,i] = scale for every k: the gradient is dout broadcast along n.
void sum_dim_backward_cpu(float* dx, const float* dout, int64_t outer, int64_t n, int64_t inner, float scale) {
  if (inner == 1) {  // a sum over the last dim (a per-sample loss): each row gets one value, added in one loop
    parallel_for(outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(n, 1)), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const float g = scale * dout[o];
        float* d = dx + o * n;
        for (int64_t k = 0; k < n; ++k) d[k] += g;
      }
    });
    return;
  }
  parallel_for(outer * n * inner, kElementwiseGrain, [&](int64_t j0, int64_t j1) {
    for_element_runs(j0, j1, n, inner, [&](int64_t o, int64_t k, int64_t i0, int64_t i1) {
      float* d = dx + (o * n + k) * inner;
      const float* g = dout + o * inner;
      for (int64_t i = i0; i < i1; ++i) d[i] += scale * g[i];
    });
  });
}

// ---------------------------------------------------------------- max along a dim
void max_dim_forward_cpu(float* out, int32_t* argmax, const float* x, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1) {
    parallel_for(outer, grain_for(n), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const float* row = x + o * n;
        float best = row[0];
        int64_t bk = 0;
        for (int64_t k = 1; k < n; ++k)
          if (max_wins(row[k], k, best, bk)) {
            best = row[k];
            bk = k;
          }
        out[o] = best;
        if (argmax) argmax[o] = (int32_t)bk;
      }
    });
    return;
  }
  parallel_for(outer * inner, grain_for(n), [&](int64_t j0, int64_t j1) {
    for_output_tiles(j0, j1, inner, [&](int64_t o, int64_t i0, int64_t i1) {
      float best[kTile];
      int32_t bk[kTile];
      const int64_t len = i1 - i0;
      const float* xo = x + o * n * inner + i0;
      for (int64_t i = 0; i < len; ++i) {
        best[i] = xo[i];
        bk[i] = 0;
      }
      for (int64_t k = 1; k < n; ++k)
        for (int64_t i = 0; i < len; ++i) {
          const float v = xo[k * inner + i];
          if (max_wins(v, k, best[i], bk[i])) {
            best[i] = v;
            bk[i] = (int32_t)k;
          }
        }
      for (int64_t i = 0; i < len; ++i) {
        out[o * inner + i0 + i] = best[i];
        if (argmax) argmax[o * inner + i0 + i] = bk[i];
      }
    });
  });
}

// d max_k x[o,k,i] / d x[o,k,i] = 1 at the first maximum k*, 0 elsewhere.
void max_dim_backward_cpu(float* dx, const float* dout, const int32_t* argmax, int64_t outer, int64_t n,
                          int64_t inner) {
  parallel_for(outer * inner, kElementwiseGrain, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t o = j / inner, i = j % inner;
      dx[(o * n + argmax[j]) * inner + i] += dout[j];
    }
  });
}

// ---------------------------------------------------------------- logsumexp along a dim
void logsumexp_forward_cpu(float* out, const float* x, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1) {
    parallel_for(outer, grain_for(n), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const float* row = x + o * n;
        float m = -INFINITY;
        for (int64_t k = 0; k < n; ++k) m = row[k] > m ? row[k] : m;
        float s = 0.f;
        for (int64_t k = 0; k < n; ++k) s += expf(row[k] - m);
        out[o] = lse_finish(m, s);
      }
    });
    return;
  }
  parallel_for(outer * inner, grain_for(n), [&](int64_t j0, int64_t j1) {
    for_output_tiles(j0, j1, inner, [&](int64_t o, int64_t i0, int64_t i1) {
      float m[kTile], s[kTile];
      const int64_t len = i1 - i0;
      const float* xo = x + o * n * inner + i0;
      for (int64_t i = 0; i < len; ++i) {
        m[i] = -INFINITY;
        s[i] = 0.f;
      }
      for (int64_t k = 0; k < n; ++k)
        for (int64_t i = 0; i < len; ++i) m[i] = xo[k * inner + i] > m[i] ? xo[k * inner + i] : m[i];
      for (int64_t k = 0; k < n; ++k)
        for (int64_t i = 0; i < len; ++i) s[i] += expf(xo[k * inner + i] - m[i]);
      for (int64_t i = 0; i < len; ++i) out[o * inner + i0 + i] = lse_finish(m[i], s[i]);
    });
  });
}

// d y[o,i] / d x[o,k,i] = exp(x[o,k,i]) / sum_k' exp(x[o,k',i]) = exp(x[o,k,i] - y[o,i])  (softmax)
void logsumexp_backward_cpu(float* dx, const float* dout, const float* x, const float* out, int64_t outer,
                            int64_t n, int64_t inner) {
  // expf costs ~10x an add, so a thread pays for itself on fewer elements than the usual grain.
  parallel_for(outer * n * inner, kElementwiseGrain / 8, [&](int64_t j0, int64_t j1) {
    for_element_runs(j0, j1, n, inner, [&](int64_t o, int64_t k, int64_t i0, int64_t i1) {
      const int64_t row = (o * n + k) * inner;
      const float* y = out + o * inner;
      const float* g = dout + o * inner;
      for (int64_t i = i0; i < i1; ++i) dx[row + i] += expf(x[row + i] - y[i]) * g[i];
    });
  });
}

}  // namespace gt
