// linear.cpp: the CPU passes around the fully connected layer's GEMMs (equations in linear.h).
//
// Both passes walk the (B, O) block row by row; rows are split over threads only when the block is
// large (a VAE layer at batch 128 is 51K floats, ~20 us on one thread: a fork/join would cost as
// much). The bias gradient sums rows in a fixed order (serially per column chunk), so it is
// deterministic for any thread count.
#include "kernels/linear.h"

#include <algorithm>

#include "kernels/matmul.h"
#include "kernels/parallel.h"

namespace gt {

namespace {
// A row pass below this many elements stays on one thread (see kElementwiseGrain: the passes here
// do a few flops per element, so the same grain applies).
constexpr int64_t kLinearGrain = 4 * kElementwiseGrain;

template <LinearAct A>
void epilogue_rows(float* y, const float* b, int64_t r0, int64_t r1, int64_t O) {
  for (int64_t r = r0; r < r1; ++r) {
    float* row = y + r * O;
    if (b) {
      for (int64_t o = 0; o < O; ++o) row[o] = linear_act(A, row[o] + b[o]);
    } else if (A != LinearAct::None) {
      for (int64_t o = 0; o < O; ++o) row[o] = linear_act(A, row[o]);
    }
  }
}

template <LinearAct A>
void backward_cols(float* g, float* db, const float* dy, const float* y, int64_t B, int64_t O, int64_t c0,
                   int64_t c1, float db_beta) {
  // Column chunk [c0, c1): rows in order, so db's sums have a fixed order.
  if (db) {
    for (int64_t o = c0; o < c1; ++o) db[o] = db_beta == 0.f ? 0.f : db[o];
  }
  for (int64_t r = 0; r < B; ++r) {
    const float* dyr = dy + r * O;
    const float* yr = y + r * O;
    float* gr = g + r * O;
    if (A == LinearAct::None) {
      if (gr != dyr)
        for (int64_t o = c0; o < c1; ++o) gr[o] = dyr[o];
    } else {
      for (int64_t o = c0; o < c1; ++o) gr[o] = yr[o] > 0.f ? dyr[o] : 0.f;
    }
    if (db)
      for (int64_t o = c0; o < c1; ++o) db[o] += gr[o];
  }
}
}  // namespace

void linear_forward_cpu(float* y, const float* x, const float* w, const float* b, int64_t B, int64_t I, int64_t O,
                        LinearAct act) {
  gemm_bias_act_cpu(false, true, B, O, I, x, w, b, act == LinearAct::Relu, y);
}

void linear_epilogue_cpu(float* y, const float* b, int64_t B, int64_t O, LinearAct act) {
  if (!b && act == LinearAct::None) return;
  parallel_for(B, std::max<int64_t>(1, kLinearGrain / std::max<int64_t>(O, 1)), [&](int64_t r0, int64_t r1) {
    if (act == LinearAct::Relu)
      epilogue_rows<LinearAct::Relu>(y, b, r0, r1, O);
    else
      epilogue_rows<LinearAct::None>(y, b, r0, r1, O);
  });
}

void linear_backward_act_cpu(float* g, float* db, const float* dy, const float* y, int64_t B, int64_t O,
                             LinearAct act, float db_beta) {
  // Split columns, not rows: each thread owns its slice of db, no reduction across threads.
  // Grain: a VAE layer (B 128, O 400: a mask, a copy and a column sum per element) takes ~35 us on
  // one thread, so it is worth two.
  const int64_t grain = std::max<int64_t>(64, kElementwiseGrain / std::max<int64_t>(B, 1));
  parallel_for(O, grain, [&](int64_t c0, int64_t c1) {
    if (act == LinearAct::Relu)
      backward_cols<LinearAct::Relu>(g, db, dy, y, B, O, c0, c1, db_beta);
    else
      backward_cols<LinearAct::None>(g, db, dy, y, B, O, c0, c1, db_beta);
  });
}

}  // namespace gt
