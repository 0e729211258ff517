// softmax.cpp: CPU softmax (kernels/softmax.h has the equations). Rows (or tiles of columns) in
// parallel, each output produced by one thread, so results do not depend on the thread count.
// exp is core/fastmath.h's fast_expf (a few ulp), which lets the exp loops vectorise.
#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>

#include "core/fastmath.h"
#include "kernels/parallel.h"

namespace gt {

namespace {

constexpr int kLanes = 8;
// Columns processed together when inner > 1: 512 floats of running state stay in L1.
constexpr int64_t kTile = 512;

int64_t grain_for(int64_t work) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, work)); }

float combine(const float* a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }

// max of a row; NaN is not propagated here (a NaN never wins the comparison) but it reaches the
// output anyway through exp(NaN - m) in the sum.
float row_max(const float* x, int64_t n) {
  float m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = -INFINITY;
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; ++l) m[l] = x[k + l] > m[l] ? x[k + l] : m[l];
  for (; k < n; ++k) m[k % kLanes] = x[k] > m[k % kLanes] ? x[k] : m[k % kLanes];
  float r = m[0];
  for (int l = 1; l < kLanes; ++l) r = m[l] > r ? m[l] : r;
  return r;
}

// y = exp(x - m), returns sum y
float exp_row(float* y, const float* x, int64_t n, float m) {
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const float e = fast_expf(x[k + l] - m);
      y[k + l] = e;
      acc[l] += e;
    }
  for (; k < n; ++k) {
    const float e = fast_expf(x[k] - m);
    y[k] = e;
    acc[k % kLanes] += e;
  }
  return combine(acc);
}

float dot_row(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[k + l] * b[k + l];
  for (; k < n; ++k) acc[k % kLanes] += a[k] * b[k];
  return combine(acc);
}

// Calls fn(o, i0, i1) for the runs of columns [j0, j1) of an (outer, inner) array, each run within
// one outer row and at most kTile long (as in reduce.cpp).
template <class F>
void for_column_tiles(int64_t j0, int64_t j1, int64_t inner, F&& fn) {
  int64_t o = j0 / inner, i = j0 % inner;
  for (int64_t j = j0; j < j1;) {
    const int64_t len = std::min({inner - i, j1 - j, kTile});
    fn(o, i, i + len);
    j += len;
    i += len;
    if (i == inner) {
      i = 0;
      ++o;
    }
  }
}

}  // namespace

void softmax_forward_cpu(float* y, const float* x, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1) {
    parallel_for(outer, grain_for(n), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const float* xr = x + o * n;
        float* yr = y + o * n;
        const float inv = 1.f / exp_row(yr, xr, n, row_max(xr, n));
        for (int64_t k = 0; k < n; ++k) yr[k] *= inv;
      }
    });
    return;
  }
  parallel_for(outer * inner, grain_for(n), [&](int64_t j0, int64_t j1) {
    for_column_tiles(j0, j1, inner, [&](int64_t o, int64_t i0, int64_t i1) {
      float m[kTile], s[kTile];
      const int64_t len = i1 - i0;
      const float* xo = x + o * n * inner + i0;
      float* yo = y + o * n * inner + i0;
      for (int64_t i = 0; i < len; ++i) {
        m[i] = -INFINITY;
        s[i] = 0.f;
      }
      for (int64_t k = 0; k < n; ++k)
        for (int64_t i = 0; i < len; ++i) m[i] = xo[k * inner + i] > m[i] ? xo[k * inner + i] : m[i];
      for (int64_t k = 0; k < n; ++k)
        for (int64_t i = 0; i < len; ++i) {
          const float e = fast_expf(xo[k * inner + i] - m[i]);
          yo[k * inner + i] = e;
          s[i] += e;
        }
      for (int64_t i = 0; i < len; ++i) s[i] = 1.f / s[i];
      for (int64_t k = 0; k < n; ++k)
        for (int64_t i = 0; i < len; ++i) yo[k * inner + i] *= s[i];
    });
  });
}

// dx = y (dy - sum_k dy y): the Jacobian diag(y) - y y^T applied to dy.
void softmax_backward_cpu(float* dx, const float* dy, const float* y, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1) {
    parallel_for(outer, grain_for(n), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const float* yr = y + o * n;
        const float* dyr = dy + o * n;
        float* dxr = dx + o * n;
        const float dot = dot_row(dyr, yr, n);
        for (int64_t k = 0; k < n; ++k) dxr[k] += yr[k] * (dyr[k] - dot);
      }
    });
    return;
  }
  parallel_for(outer * inner, grain_for(n), [&](int64_t j0, int64_t j1) {
    for_column_tiles(j0, j1, inner, [&](int64_t o, int64_t i0, int64_t i1) {
      float dot[kTile];
      const int64_t len = i1 - i0;
      const int64_t base = o * n * inner + i0;
      for (int64_t i = 0; i < len; ++i) dot[i] = 0.f;
      for (int64_t k = 0; k < n; ++k)
        for (int64_t i = 0; i < len; ++i) dot[i] += dy[base + k * inner + i] * y[base + k * inner + i];
      for (int64_t k = 0; k < n; ++k)
        for (int64_t i = 0; i < len; ++i) {
          const int64_t e = base + k * inner + i;
          dx[e] += y[e] * (dy[e] - dot[i]);
        }
    });
  });
}

}  // namespace gt
