// ops_diffusion.cpp: the one differentiable DDPM op — the per-sample ε-prediction loss
// mse_b = Σ_j (ε̂_bj − ε_bj)² / D, one kernel forward and one backward (kernels/diffusion.h).
// The other diffusion kernels (q_sample, the ancestral and DDIM steps) need no gradient and are
// wrapped with their schedule in models/diffusion.h.
#include "autograd/ops.h"
#include "core/dispatch.h"
#include "kernels/diffusion.h"

namespace gt {

Tensor ddpm_eps_loss(const Tensor& eps_pred, const Tensor& eps) {
  const char* op = "ddpm_eps_loss";
  check_defined(op, eps_pred, "eps_pred");
  check_defined(op, eps, "eps");
  check_same_device(op, eps_pred, eps);
  check_dtype_f32(op, eps_pred);
  check_dtype_f32(op, eps);
  GT_CHECK(eps_pred.shape() == eps.shape(), op << ": eps_pred " << eps_pred.shape() << " and eps " << eps.shape()
                                               << " must have the same shape");
  GT_CHECK(eps_pred.dim() >= 1 && eps_pred.size(0) >= 1 && eps_pred.numel() >= 1,
           op << ": expected (B, ...) inputs with B >= 1 and at least one element per sample, got "
              << eps_pred.shape());
  const int64_t B = eps_pred.size(0), D = eps_pred.numel() / B;
  Tensor mse = Tensor::empty({B}, eps_pred.device());
  GT_DISPATCH(eps_pred.device(), ddpm_eps_loss_forward_cpu(mse.data(), eps_pred.data(), eps.data(), B, D),
              ddpm_eps_loss_forward_cuda(mse.data(), eps_pred.data(), eps.data(), B, D));
  if (needs_grad({&eps_pred, &eps})) {
    record(op, {eps_pred, eps}, mse, [eps_pred, eps, B, D](const Tensor& dmse) {
      // dε̂ += 2 (ε̂ − ε) / D · dmse_b;  dε += −2 (ε̂ − ε) / D · dmse_b
      float* dp = eps_pred.requires_grad() ? grad_buffer(eps_pred).data() : nullptr;
      float* de = eps.requires_grad() ? grad_buffer(eps).data() : nullptr;
      GT_DISPATCH(eps_pred.device(),
                  ddpm_eps_loss_backward_cpu(dp, de, dmse.data(), eps_pred.data(), eps.data(), B, D),
                  ddpm_eps_loss_backward_cuda(dp, de, dmse.data(), eps_pred.data(), eps.data(), B, D));
    });
  }
  return mse;
}

}  // namespace gt
