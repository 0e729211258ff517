// ops_norm.cpp: gt::group_norm, gt::softmax and gt::timestep_embedding — the U-Net's normalisation,
// attention's row normalisation and the diffusion time embedding. GroupNorm and softmax are one
// fused kernel forward and one backward each (equations and derivatives in kernels/norm.h and
// kernels/softmax.h); the embedding (kernels/embedding.h) is a constant and records nothing.
#include <cmath>

#include "autograd/ops.h"
#include "core/dispatch.h"
#include "kernels/embedding.h"
#include "kernels/norm.h"
#include "kernels/softmax.h"

namespace gt {

namespace {

// The gradient buffer of t as a raw pointer, or nullptr when t needs no gradient (or is undefined).
float* grad_ptr(const Tensor& t) { return t.defined() && t.requires_grad() ? grad_buffer(t).data() : nullptr; }

void check_affine(const Tensor& p, const char* what, const Tensor& x, int64_t C) {
  if (!p.defined()) return;
  check_dtype_f32("group_norm", p);
  check_same_device("group_norm", x, p);
  GT_CHECK(p.dim() == 1 && p.size(0) == C, "group_norm: " << what << " " << p.shape() << " must be (" << C
                                                          << ") for input " << x.shape() << " with " << C
                                                          << " channels");
}

}  // namespace

// Derivative (kernels/norm.h), with xhat = (x - mu) rstd and gy = dy w[c] over a group's M elements:
//   dx = rstd (gy - mean(gy) - xhat mean(gy xhat)),  dw[c] += sum_{n,s} dy xhat,  db[c] += sum_{n,s} dy.
namespace {
// group_norm, and with silu = true the fused silu(group_norm(x)) (CPU only; the caller composes the
// two ops on CUDA).
Tensor group_norm_impl(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps, bool silu) {
  const char* op = silu ? "group_norm_silu" : "group_norm";
  check_defined(op, x, "the input");
  check_dtype_f32(op, x);
  GT_CHECK(x.dim() >= 2, "group_norm: input must be (N, C, *spatial), got " << x.shape());
  const int64_t N = x.size(0), C = x.size(1);
  int64_t S = 1;
  for (int d = 2; d < x.dim(); ++d) S *= x.size(d);
  GT_CHECK(groups >= 1 && C % groups == 0, "group_norm: " << C << " channels of input " << x.shape()
                                                          << " cannot be split into " << groups << " groups");
  GT_CHECK(x.numel() > 0, "group_norm: input " << x.shape() << " is empty");
  GT_CHECK(eps >= 0.f && std::isfinite(eps), "group_norm: eps " << eps << " must be finite and >= 0");
  check_affine(weight, "weight", x, C);
  check_affine(bias, "bias", x, C);
  const int64_t G = groups;

  Tensor y = Tensor::empty(x.shape(), x.device());
  Tensor mean = Tensor::empty({N, G, 2}, x.device());  // (hi, lo): the mean as hi + lo (norm.h)
  Tensor rstd = Tensor::empty({N, G}, x.device());
  const float* wp = weight.defined() ? weight.data() : nullptr;
  const float* bp = bias.defined() ? bias.data() : nullptr;
  if (silu)
    group_norm_silu_forward_cpu(y.data(), mean.data(), rstd.data(), x.data(), wp, bp, N, C, S, G, eps);
  else
    GT_DISPATCH(x.device(), group_norm_forward_cpu(y.data(), mean.data(), rstd.data(), x.data(), wp, bp, N, C, S, G, eps),
                group_norm_forward_cuda(y.data(), mean.data(), rstd.data(), x.data(), wp, bp, N, C, S, G, eps));

  if (needs_grad({&x, &weight, &bias})) {
    std::vector<Tensor> inputs{x};
    if (weight.defined()) inputs.push_back(weight);
    if (bias.defined()) inputs.push_back(bias);
    // Saves x and the (N, G) statistics, not xhat: xhat is recomputed in the backward's own sweep.
    record(op, inputs, y, [x, weight, bias, mean, rstd, N, C, S, G, silu](const Tensor& dy) {
      bool dx_overwrite = false;  // the CPU writes the first gradient into x's buffer (grad_dest)
      float* dx = x.requires_grad() ? grad_dest(x, &dx_overwrite) : nullptr;
      float *dw = grad_ptr(weight), *db = grad_ptr(bias);
      if (!dx && !dw && !db) return;
      Tensor work = Tensor::empty({2, N, C}, x.device());  // per-(n, c) partial sums; a cache hit
      const float* wp = weight.defined() ? weight.data() : nullptr;
      if (silu) {  // dy here is dz, the gradient of silu's output
        group_norm_silu_backward_cpu(dx, dw, db, work.data(), dy.data(), x.data(), mean.data(), rstd.data(), wp,
                                     bias.defined() ? bias.data() : nullptr, N, C, S, G, dx_overwrite);
        return;
      }
      GT_DISPATCH(x.device(),
                  group_norm_backward_cpu(dx, dw, db, work.data(), dy.data(), x.data(), mean.data(), rstd.data(), wp,
                                          N, C, S, G, dx_overwrite),
                  group_norm_backward_cuda(dx, dw, db, work.data(), dy.data(), x.data(), mean.data(), rstd.data(), wp,
                                           N, C, S, G));
    });
  }
  return y;
}
}  // namespace

Tensor group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps) {
  return group_norm_impl(x, groups, weight, bias, eps, false);
}

// Derivative: with y = group_norm(x) recomputed from x and the statistics, dy = dz silu'(y), then
// group_norm's backward on dy.
Tensor group_norm_silu(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps) {
  if (x.defined() && x.device() != Device::CPU) return silu(group_norm(x, groups, weight, bias, eps));
  return group_norm_impl(x, groups, weight, bias, eps, true);
}

// Derivative: dx = y (dy - sum_k dy y) along dim. Saves y (the output), not x.
Tensor softmax(const Tensor& a, int dim) {
  const char* op = "softmax";
  check_defined(op, a, "the input");
  check_dtype_f32(op, a);
  const Shape& s = a.shape();
  const int nd = s.size();
  GT_CHECK(nd >= 1, "softmax: input must have at least one dim, got a scalar " << s);
  const int d = dim < 0 ? dim + nd : dim;
  GT_CHECK(d >= 0 && d < nd, "softmax: dim " << dim << " is out of range for shape " << s << " (valid dims: " << -nd
                                             << " to " << nd - 1 << ")");
  int64_t outer = 1, inner = 1;
  const int64_t n = s[d];
  for (int i = 0; i < d; ++i) outer *= s[i];
  for (int i = d + 1; i < nd; ++i) inner *= s[i];

  Tensor y = Tensor::empty(s, a.device());
  GT_DISPATCH(a.device(), softmax_forward_cpu(y.data(), a.data(), outer, n, inner),
              softmax_forward_cuda(y.data(), a.data(), outer, n, inner));
  if (needs_grad({&a})) {
    record(op, {a}, y, [a, y, outer, n, inner](const Tensor& dy) {
      if (!a.requires_grad()) return;
      Tensor dx = grad_buffer(a);
      GT_DISPATCH(a.device(), softmax_backward_cpu(dx.data(), dy.data(), y.data(), outer, n, inner),
                  softmax_backward_cuda(dx.data(), dy.data(), y.data(), outer, n, inner));
    });
  }
  return y;
}

Tensor timestep_embedding(const Tensor& t, int dim) {
  const char* op = "timestep_embedding";
  check_defined(op, t, "the timesteps");
  check_dtype_f32(op, t);
  GT_CHECK(t.dim() == 1, "timestep_embedding: timesteps must be (B), got " << t.shape());
  GT_CHECK(dim >= 2 && dim % 2 == 0, "timestep_embedding: dim " << dim << " must be even and >= 2 (sin and cos halves)");
  const int64_t B = t.size(0);
  Tensor out = Tensor::empty({B, (int64_t)dim}, t.device());
  GT_DISPATCH(t.device(), timestep_embedding_cpu(out.data(), t.data(), B, dim),
              timestep_embedding_cuda(out.data(), t.data(), B, dim));
  return out;  // not recorded: a constant input to the network, never differentiated
}

}  // namespace gt
