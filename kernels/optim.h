// optim.h: fused optimiser updates — one pass over a parameter tensor per step, on CPU and CUDA,
// with PyTorch's exact semantics (torch.optim.SGD / Adam / AdamW, version 1.13, single-tensor path).
//
// Adam (Kingma & Ba 2015), step t >= 1, gradient g, parameter p:
//   g  <- g + wd * p                      (Adam's L2 weight decay; AdamW instead: p <- p (1 - lr wd))
//   m  <- b1 m + (1 - b1) g
//   v  <- b2 v + (1 - b2) g^2
//   p  <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)     (eps outside the sqrt)
// SGD with momentum mu, dampening d, weight decay wd:
//   g  <- g + wd * p
//   buf <- g on the first step, else mu buf + (1 - d) g
//   g  <- g + mu buf (Nesterov) or buf
//   p  <- p - lr g
//
// EMA of the weights (for sampling from diffusion models, Ho et al. 2020):
//   e  <- decay e + (1 - decay) p         computed as e + (1 - decay)(p - e), as torch's lerp_
//
//   gt::AdamHyper h = gt::adam_hyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0.f, false, /*step=*/t);
//   gt::adam_step_cpu(p, g, m, v, n, h);
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace gt {

struct AdamHyper {
  float lr, beta1, beta2, eps, weight_decay;
  bool decoupled;         // AdamW
  float step_size;        // lr / (1 - b1^t)
  float bias_c2_sqrt;     // sqrt(1 - b2^t)
};

// Computes the bias corrections for step t (>= 1) in double, as PyTorch does in Python floats.
inline AdamHyper adam_hyper(float lr, float beta1, float beta2, float eps, float wd, bool decoupled, int64_t t) {
  AdamHyper h{lr, beta1, beta2, eps, wd, decoupled, 0.f, 0.f};
  h.step_size = (float)((double)lr / (1.0 - std::pow((double)beta1, (double)t)));
  h.bias_c2_sqrt = (float)std::sqrt(1.0 - std::pow((double)beta2, (double)t));
  return h;
}

GT_HD inline void adam_update(float& p, float g, float& m, float& v, const AdamHyper& h) {
  if (h.weight_decay != 0.f) {
    if (h.decoupled) p *= 1.f - h.lr * h.weight_decay;
    else g += h.weight_decay * p;
  }
  m = h.beta1 * m + (1.f - h.beta1) * g;
  v = h.beta2 * v + (1.f - h.beta2) * g * g;
  const float denom = sqrtf(v) / h.bias_c2_sqrt + h.eps;
  p -= h.step_size * (m / denom);
}

struct SgdHyper {
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool first_step;  // momentum buffer starts as the first gradient
};

GT_HD inline void sgd_update(float& p, float g, float* buf, const SgdHyper& h) {
  if (h.weight_decay != 0.f) g += h.weight_decay * p;
  if (h.momentum != 0.f) {
    float b = h.first_step ? g : h.momentum * (*buf) + (1.f - h.dampening) * g;
    *buf = b;
    g = h.nesterov ? g + h.momentum * b : b;
  }
  p -= h.lr * g;
}

// p, g, m, v: (n) — the parameter, its gradient, and Adam's two moment buffers (updated in place).
void adam_step_cpu(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h);
// Several tensors in one parallel region (PyTorch's "multi-tensor" idea): every thread updates its
// slice of every tensor, so a model's many small tensors (biases, a 20-wide latent layer) are
// updated in parallel too, with one fork/join per step instead of one per tensor.
// Element for element the same arithmetic as adam_step_cpu.
struct AdamTensor {
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t n;
};
void adam_step_multi_cpu(const AdamTensor* tensors, int64_t count, const AdamHyper& h);
void adam_step_cuda(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h);
// buf: (n) momentum buffer, may be null when momentum == 0.
void sgd_step_cpu(float* p, const float* g, float* buf, int64_t n, const SgdHyper& h);
void sgd_step_cuda(float* p, const float* g, float* buf, int64_t n, const SgdHyper& h);
// ema, p: (n); ema <- ema + (1 - decay)(p - ema).
GT_HD inline void ema_update(float& e, float p, float one_minus_decay) { e += one_minus_decay * (p - e); }
void ema_update_cpu(float* ema, const float* p, int64_t n, float decay);
void ema_update_cuda(float* ema, const float* p, int64_t n, float decay);

}  // namespace gt
