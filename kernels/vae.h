// vae.h: the fused kernels of the variational autoencoder's loss (Kingma & Welling 2014), in the
// course's notation: q(z|x) = N(mu, diag sigma^2) with logvar = log sigma^2, p(z) = N(0, I).
//
// Reparameterisation   z = mu + exp(logvar / 2) * eps,   eps ~ N(0, I) (the shared Philox stream)
//                      dmu += dz;   dlogvar += 1/2 dz eps exp(logvar / 2)
// KL per sample        KL_b = 1/2 sum_j (-logvar_j - 1 + exp(logvar_j) + mu_j^2)
//                      dmu += dKL_b mu;   dlogvar += 1/2 dKL_b (exp(logvar) - 1)
// Bernoulli NLL        -log p(x|l) = sum_j max(l,0) - l x + log(1 + exp(-|l|)),  l = logits
//                      (BCE with logits: never exponentiates a positive number)
//                      dl += dNLL_b (sigmoid(l) - x);   dx += dNLL_b (-l)
// Gaussian NLL         -log N(x | m, exp(lv)) = 1/2 sum_j ((x - m)^2 exp(-lv) + lv + log 2 pi)
//                      dm += dNLL_b (m - x) exp(-lv);  dx += dNLL_b (x - m) exp(-lv);
//                      dlv += 1/2 dNLL_b (1 - (x - m)^2 exp(-lv))
//                      lv is a scalar (fixed or learned s^2), one per dimension (D), or per element.
//
// Each per-sample loss is a row reduction over D: on the CPU a loop per row (rows in parallel), on
// CUDA one block per row with a shuffle reduction (no atomics: deterministic). The per-element terms
// are GT_HD functions shared by both. Reparameterisation draws eps inside the kernel with
// core/philox.h, element i at stream offset + i — the same numbers gt::Generator::normal would write,
// so CPU and CUDA runs from one seed see the same noise.
//
//   gt::reparam_forward_cpu(z, eps, mu, logvar, B * D, seed, offset);
//   gt::kl_forward_cuda(kl, mu, logvar, B, D);
#pragma once

#include <cmath>
#include <cstdint>

#include "core/fastmath.h"
#include "core/host_device.h"

namespace gt {

constexpr float kLog2Pi = 1.8378770664093453f;

// fast_expf / fast_log1pf (core/fastmath.h): a few-ulp polynomials that let the CPU loops vectorise.
GT_HD inline float kl_term(float mu, float lv) { return 0.5f * (-lv - 1.f + fast_expf(lv) + mu * mu); }
GT_HD inline float bce_logits_term(float l, float x) {
  return (l > 0.f ? l : 0.f) - l * x + fast_log1pf(fast_expf(-fabsf(l)));
}
GT_HD inline float gaussian_nll_term(float m, float x, float lv) {
  const float d = x - m;
  return 0.5f * (d * d * fast_expf(-lv) + lv + kLog2Pi);
}
GT_HD inline float stable_sigmoid(float x) {  // e = exp(-|x|) <= 1: never overflows
  const float e = fast_expf(-fabsf(x));
  const float s = 1.f / (1.f + e);
  return x >= 0.f ? s : e * s;
}

// How the Gaussian NLL's logvar is laid out relative to x (B, D).
enum class LogvarLayout : int { Scalar = 0, PerDim = 1, PerElement = 2 };
GT_HD inline int64_t logvar_index(LogvarLayout l, int64_t b, int64_t j, int64_t D) {
  return l == LogvarLayout::Scalar ? 0 : (l == LogvarLayout::PerDim ? j : b * D + j);
}

// z, eps, mu, logvar: (n). eps receives the draws (saved for backward).
void reparam_forward_cpu(float* z, float* eps, const float* mu, const float* logvar, int64_t n, uint64_t seed,
                         uint64_t offset);
void reparam_forward_cuda(float* z, float* eps, const float* mu, const float* logvar, int64_t n, uint64_t seed,
                          uint64_t offset);
// dmu, dlogvar may be null (input needs no gradient).
void reparam_backward_cpu(float* dmu, float* dlogvar, const float* dz, const float* eps, const float* logvar,
                          int64_t n);
void reparam_backward_cuda(float* dmu, float* dlogvar, const float* dz, const float* eps, const float* logvar,
                           int64_t n);

// kl (B); mu, logvar (B, D)
void kl_forward_cpu(float* kl, const float* mu, const float* logvar, int64_t B, int64_t D);
void kl_forward_cuda(float* kl, const float* mu, const float* logvar, int64_t B, int64_t D);
void kl_backward_cpu(float* dmu, float* dlogvar, const float* dkl, const float* mu, const float* logvar, int64_t B,
                     int64_t D);
void kl_backward_cuda(float* dmu, float* dlogvar, const float* dkl, const float* mu, const float* logvar, int64_t B,
                      int64_t D);

// nll (B); logits, x (B, D)
void bernoulli_nll_forward_cpu(float* nll, const float* logits, const float* x, int64_t B, int64_t D);
void bernoulli_nll_forward_cuda(float* nll, const float* logits, const float* x, int64_t B, int64_t D);
// The CPU forward for training: also writes unit (B, D) = sigmoid(logits) - x, d nll_b / d logits_bj,
// from the same exp(-|l|) the loss uses, so backward is one scaling pass (rows_scale_cpu) instead of a
// second pass of exponentials. nll is bit-for-bit bernoulli_nll_forward_cpu's.
void bernoulli_nll_forward_saving_cpu(float* nll, float* unit, const float* logits, const float* x, int64_t B,
                                      int64_t D);
// out (B, D) = beta * out + scale_b * unit (B, D); beta 0: out is overwritten, never read.
void rows_scale_cpu(float* out, float beta, const float* unit, const float* scale, int64_t B, int64_t D);
void bernoulli_nll_backward_cpu(float* dlogits, float* dx, const float* dnll, const float* logits, const float* x,
                                int64_t B, int64_t D);
void bernoulli_nll_backward_cuda(float* dlogits, float* dx, const float* dnll, const float* logits, const float* x,
                                 int64_t B, int64_t D);

// nll (B); mean, x (B, D); logvar laid out by `layout`. dlogvar_full (B, D) receives the
// per-element logvar gradient (written, not accumulated); the caller sums it to logvar's shape.
void gaussian_nll_forward_cpu(float* nll, const float* mean, const float* x, const float* logvar,
                              LogvarLayout layout, int64_t B, int64_t D);
void gaussian_nll_forward_cuda(float* nll, const float* mean, const float* x, const float* logvar,
                               LogvarLayout layout, int64_t B, int64_t D);
void gaussian_nll_backward_cpu(float* dmean, float* dx, float* dlogvar_full, const float* dnll, const float* mean,
                               const float* x, const float* logvar, LogvarLayout layout, int64_t B, int64_t D);
void gaussian_nll_backward_cuda(float* dmean, float* dx, float* dlogvar_full, const float* dnll, const float* mean,
                                const float* x, const float* logvar, LogvarLayout layout, int64_t B, int64_t D);

}  // namespace gt
