// vae.cpp: CPU references of the fused VAE kernels — plain loops over the GT_HD terms of vae.h,
// rows in parallel for the per-sample reductions.
#include "kernels/vae.h"

#include "core/philox.h"
#include "kernels/parallel.h"

namespace gt {

namespace {
// Rows per parallel chunk: a row of a VAE is D = 20..784 floats, so group enough rows to be worth
// a thread.
int64_t row_grain(int64_t D) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(D, 1)); }

// Each row's sum runs in kLanes partial sums, added pairwise at the end: a plain `s += term` loop
// is a serial chain the compiler may not reorder (no -ffast-math), so it would not vectorise; this
// order is fixed, so the result is still the same on every run and thread count.
constexpr int kLanes = 16;

template <class Term>
void row_sums(float* out, int64_t B, int64_t D, Term term) {
  parallel_for(B, row_grain(D), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      float lane[kLanes] = {};
      int64_t j = 0;
      for (; j + kLanes <= D; j += kLanes)
        for (int l = 0; l < kLanes; ++l) lane[l] += term(b, j + l);
      for (int l = 0; j < D; ++j, ++l) lane[l] += term(b, j);
      for (int w = kLanes / 2; w > 0; w /= 2)
        for (int l = 0; l < w; ++l) lane[l] += lane[l + w];
      out[b] = lane[0];
    }
  });
}
}  // namespace

void reparam_forward_cpu(float* z, float* eps, const float* mu, const float* logvar, int64_t n, uint64_t seed,
                         uint64_t offset) {
  parallel_for(n, kElementwiseGrain / 8, [&](int64_t b, int64_t e) {
    philox_normals(seed, offset + (uint64_t)b, e - b, [&](int64_t j, float r) { eps[b + j] = r; });
    for (int64_t i = b; i < e; ++i) z[i] = mu[i] + fast_expf(0.5f * logvar[i]) * eps[i];
  });
}

void reparam_backward_cpu(float* dmu, float* dlogvar, const float* dz, const float* eps, const float* logvar,
                          int64_t n) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      if (dmu) dmu[i] += dz[i];
      if (dlogvar) dlogvar[i] += 0.5f * dz[i] * eps[i] * fast_expf(0.5f * logvar[i]);
    }
  });
}

void kl_forward_cpu(float* kl, const float* mu, const float* logvar, int64_t B, int64_t D) {
  row_sums(kl, B, D, [&](int64_t b, int64_t j) { return kl_term(mu[b * D + j], logvar[b * D + j]); });
}

// The backward loops run row by row: the per-sample gradient is loaded once per row, the inner loop
// is contiguous and vectorises (an i / D per element would not).
template <class Body>
void rows_elementwise(int64_t B, int64_t D, Body body) {
  parallel_for(B, row_grain(D), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) body(b, b * D);
  });
}

void kl_backward_cpu(float* dmu, float* dlogvar, const float* dkl, const float* mu, const float* logvar, int64_t B,
                     int64_t D) {
  rows_elementwise(B, D, [&](int64_t b, int64_t o) {
    const float g = dkl[b];
    if (dmu)
      for (int64_t j = o; j < o + D; ++j) dmu[j] += g * mu[j];
    if (dlogvar)
      for (int64_t j = o; j < o + D; ++j) dlogvar[j] += 0.5f * g * (fast_expf(logvar[j]) - 1.f);
  });
}

void bernoulli_nll_forward_cpu(float* nll, const float* logits, const float* x, int64_t B, int64_t D) {
  row_sums(nll, B, D, [&](int64_t b, int64_t j) { return bce_logits_term(logits[b * D + j], x[b * D + j]); });
}

void bernoulli_nll_forward_saving_cpu(float* nll, float* unit, const float* logits, const float* x, int64_t B,
                                      int64_t D) {
  // bce_logits_term and stable_sigmoid of vae.h written out to share e = exp(-|l|); same lanes as
  // row_sums, so the same sums.
  parallel_for(B, row_grain(D), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* l = logits + b * D;
      const float* xv = x + b * D;
      float* u = unit + b * D;
      float lane[kLanes] = {};
      auto one = [&](int64_t j, float& acc) {
        const float e = fast_expf(-fabsf(l[j]));
        acc += (l[j] > 0.f ? l[j] : 0.f) - l[j] * xv[j] + fast_log1pf(e);
        const float s = 1.f / (1.f + e);
        u[j] = (l[j] >= 0.f ? s : e * s) - xv[j];
      };
      int64_t j = 0;
      for (; j + kLanes <= D; j += kLanes)
        for (int k = 0; k < kLanes; ++k) one(j + k, lane[k]);
      for (int k = 0; j < D; ++j, ++k) one(j, lane[k]);
      for (int w = kLanes / 2; w > 0; w /= 2)
        for (int k = 0; k < w; ++k) lane[k] += lane[k + w];
      nll[b] = lane[0];
    }
  });
}

void rows_scale_cpu(float* out, float beta, const float* unit, const float* scale, int64_t B, int64_t D) {
  rows_elementwise(B, D, [&](int64_t b, int64_t o) {
    const float g = scale[b];
    if (beta == 0.f) {
      for (int64_t j = o; j < o + D; ++j) out[j] = g * unit[j];
    } else {
      for (int64_t j = o; j < o + D; ++j) out[j] = beta * out[j] + g * unit[j];
    }
  });
}

void bernoulli_nll_backward_cpu(float* dlogits, float* dx, const float* dnll, const float* logits, const float* x,
                                int64_t B, int64_t D) {
  rows_elementwise(B, D, [&](int64_t b, int64_t o) {
    const float g = dnll[b];
    if (dlogits)
      for (int64_t j = o; j < o + D; ++j) dlogits[j] += g * (stable_sigmoid(logits[j]) - x[j]);
    if (dx)
      for (int64_t j = o; j < o + D; ++j) dx[j] += -g * logits[j];
  });
}

void gaussian_nll_forward_cpu(float* nll, const float* mean, const float* x, const float* logvar,
                              LogvarLayout layout, int64_t B, int64_t D) {
  row_sums(nll, B, D, [&](int64_t b, int64_t j) {
    return gaussian_nll_term(mean[b * D + j], x[b * D + j], logvar[logvar_index(layout, b, j, D)]);
  });
}

void gaussian_nll_backward_cpu(float* dmean, float* dx, float* dlogvar_full, const float* dnll, const float* mean,
                               const float* x, const float* logvar, LogvarLayout layout, int64_t B, int64_t D) {
  rows_elementwise(B, D, [&](int64_t b, int64_t o) {
    const float g = dnll[b];
    for (int64_t j = 0; j < D; ++j) {
      const int64_t i = o + j;
      const float inv = fast_expf(-logvar[logvar_index(layout, b, j, D)]);
      const float d = x[i] - mean[i];
      if (dmean) dmean[i] += -g * d * inv;
      if (dx) dx[i] += g * d * inv;
      if (dlogvar_full) dlogvar_full[i] = 0.5f * g * (1.f - d * d * inv);
    }
  });
}

}  // namespace gt
