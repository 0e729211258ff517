// ops_vae.cpp: the differentiable fused VAE ops — reparameterisation, KL to N(0, I), and the
// Bernoulli and Gaussian negative log-likelihoods, each one kernel forward and one backward
// (equations and derivatives at the top of kernels/vae.h).
#include "autograd/ops.h"
#include "core/dispatch.h"
#include "core/rng.h"
#include "kernels/elementwise.h"
#include "kernels/vae.h"

namespace gt {

namespace {
void check_rows(const char* op, const Tensor& a, const char* an, const Tensor& b, const char* bn) {
  check_defined(op, a, an);
  check_defined(op, b, bn);
  check_same_device(op, a, b);
  check_dtype_f32(op, a);
  check_dtype_f32(op, b);
  GT_CHECK(a.shape() == b.shape(), op << ": " << an << " " << a.shape() << " and " << bn << " " << b.shape()
                                      << " must have the same shape");
  GT_CHECK(a.dim() == 2, op << ": expected (B, D) inputs, got " << a.shape());
}
float* grad_ptr(const Tensor& t) { return t.requires_grad() ? grad_buffer(t).data() : nullptr; }
}  // namespace

Tensor reparameterize(const Tensor& mu, const Tensor& logvar, Generator& gen, Tensor* eps_out) {
  check_defined("reparameterize", mu, "mu");
  check_defined("reparameterize", logvar, "logvar");
  check_same_device("reparameterize", mu, logvar);
  check_same_shape("reparameterize (mu vs logvar)", mu, logvar);
  check_dtype_f32("reparameterize", mu);
  check_dtype_f32("reparameterize", logvar);
  const int64_t n = mu.numel();
  Tensor z = Tensor::empty(mu.shape(), mu.device());
  Tensor eps = Tensor::empty(mu.shape(), mu.device());
  // The draws are elements [offset, offset + n) of the generator's stream, exactly as
  // gen.normal(n) would produce them: round the offset to a Box-Muller pair, then advance.
  const uint64_t offset = (gen.offset() + 1) & ~uint64_t(1);
  gen.set_offset(offset + (uint64_t)((n + 1) & ~int64_t(1)));
  GT_DISPATCH(mu.device(), reparam_forward_cpu(z.data(), eps.data(), mu.data(), logvar.data(), n, gen.seed(), offset),
              reparam_forward_cuda(z.data(), eps.data(), mu.data(), logvar.data(), n, gen.seed(), offset));
  if (eps_out) *eps_out = eps;
  if (needs_grad({&mu, &logvar})) {
    record("reparameterize", {mu, logvar}, z, [mu, logvar, eps](const Tensor& dz) {
      // dmu += dz;  dlogvar += 1/2 dz eps exp(logvar / 2)
      float* dmu = grad_ptr(mu);
      float* dlv = grad_ptr(logvar);
      GT_DISPATCH(mu.device(), reparam_backward_cpu(dmu, dlv, dz.data(), eps.data(), logvar.data(), mu.numel()),
                  reparam_backward_cuda(dmu, dlv, dz.data(), eps.data(), logvar.data(), mu.numel()));
    });
  }
  return z;
}

Tensor kl_normal(const Tensor& mu, const Tensor& logvar) {
  check_rows("kl_normal", mu, "mu", logvar, "logvar");
  const int64_t B = mu.size(0), D = mu.size(1);
  Tensor kl = Tensor::empty({B}, mu.device());
  GT_DISPATCH(mu.device(), kl_forward_cpu(kl.data(), mu.data(), logvar.data(), B, D),
              kl_forward_cuda(kl.data(), mu.data(), logvar.data(), B, D));
  if (needs_grad({&mu, &logvar})) {
    record("kl_normal", {mu, logvar}, kl, [mu, logvar, B, D](const Tensor& dkl) {
      // dmu += dKL_b mu;  dlogvar += 1/2 dKL_b (exp(logvar) - 1)
      float* dmu = grad_ptr(mu);
      float* dlv = grad_ptr(logvar);
      GT_DISPATCH(mu.device(), kl_backward_cpu(dmu, dlv, dkl.data(), mu.data(), logvar.data(), B, D),
                  kl_backward_cuda(dmu, dlv, dkl.data(), mu.data(), logvar.data(), B, D));
    });
  }
  return kl;
}

Tensor bernoulli_nll(const Tensor& logits, const Tensor& x) {
  check_rows("bernoulli_nll", logits, "logits", x, "x");
  const int64_t B = logits.size(0), D = logits.size(1);
  Tensor nll = Tensor::empty({B}, logits.device());
  // Training on the CPU: the forward pass also keeps unit = sigmoid(logits) - x (one exp per element
  // for both), and backward only scales it.
  Tensor unit;
  if (logits.device() == Device::CPU && needs_grad({&logits})) {
    unit = Tensor::empty({B, D});
    bernoulli_nll_forward_saving_cpu(nll.data(), unit.data(), logits.data(), x.data(), B, D);
  } else {
    GT_DISPATCH(logits.device(), bernoulli_nll_forward_cpu(nll.data(), logits.data(), x.data(), B, D),
                bernoulli_nll_forward_cuda(nll.data(), logits.data(), x.data(), B, D));
  }
  if (needs_grad({&logits, &x})) {
    record("bernoulli_nll", {logits, x}, nll, [logits, x, unit, B, D](const Tensor& dnll) {
      // dlogits += dNLL_b (sigmoid(logits) - x);  dx += dNLL_b (-logits)
      if (unit.defined()) {
        if (logits.requires_grad()) {
          float beta;
          float* dl = grad_target(logits, &beta).data();
          rows_scale_cpu(dl, beta, unit.data(), dnll.data(), B, D);
        }
        if (x.requires_grad())
          bernoulli_nll_backward_cpu(nullptr, grad_ptr(x), dnll.data(), logits.data(), x.data(), B, D);
        return;
      }
      float* dl = grad_ptr(logits);
      float* dx = grad_ptr(x);
      GT_DISPATCH(logits.device(), bernoulli_nll_backward_cpu(dl, dx, dnll.data(), logits.data(), x.data(), B, D),
                  bernoulli_nll_backward_cuda(dl, dx, dnll.data(), logits.data(), x.data(), B, D));
    });
  }
  return nll;
}

Tensor gaussian_nll(const Tensor& mean, const Tensor& x, const Tensor& logvar) {
  check_rows("gaussian_nll", mean, "mean", x, "x");
  check_defined("gaussian_nll", logvar, "logvar");
  check_same_device("gaussian_nll", mean, logvar);
  check_dtype_f32("gaussian_nll", logvar);
  const int64_t B = mean.size(0), D = mean.size(1);
  LogvarLayout layout;
  if (logvar.numel() == 1) layout = LogvarLayout::Scalar;
  else if (logvar.shape() == Shape{D} || logvar.shape() == Shape{1, D}) layout = LogvarLayout::PerDim;
  else if (logvar.shape() == mean.shape()) layout = LogvarLayout::PerElement;
  else GT_FAIL("gaussian_nll: logvar " << logvar.shape() << " must be a scalar, (" << D << ") or " << mean.shape());
  Tensor nll = Tensor::empty({B}, mean.device());
  GT_DISPATCH(mean.device(),
              gaussian_nll_forward_cpu(nll.data(), mean.data(), x.data(), logvar.data(), layout, B, D),
              gaussian_nll_forward_cuda(nll.data(), mean.data(), x.data(), logvar.data(), layout, B, D));
  if (needs_grad({&mean, &x, &logvar})) {
    record("gaussian_nll", {mean, x, logvar}, nll, [mean, x, logvar, layout, B, D](const Tensor& dnll) {
      // dmean += dNLL_b (mean - x) e^-lv;  dx += dNLL_b (x - mean) e^-lv;
      // dlv += 1/2 dNLL_b (1 - (x - mean)^2 e^-lv), summed to logvar's shape
      float* dm = grad_ptr(mean);
      float* dx = grad_ptr(x);
      Tensor dlv_full;
      if (logvar.requires_grad()) dlv_full = Tensor::empty({B, D}, mean.device());
      float* dlvf = dlv_full.defined() ? dlv_full.data() : nullptr;
      GT_DISPATCH(mean.device(),
                  gaussian_nll_backward_cpu(dm, dx, dlvf, dnll.data(), mean.data(), x.data(), logvar.data(), layout, B, D),
                  gaussian_nll_backward_cuda(dm, dx, dlvf, dnll.data(), mean.data(), x.data(), logvar.data(), layout,
                                             B, D));
      if (dlvf) {
        Tensor g = grad_buffer(logvar);
        const ReducePlan rp = make_reduce_plan(Shape{B, D}, logvar.numel() == 1 ? Shape{} : logvar.shape());
        GT_DISPATCH(mean.device(), sum_to_shape_cpu(g.data(), dlvf, rp, 1.f),
                    sum_to_shape_cuda(g.data(), dlvf, rp, 1.f));
      }
    });
  }
  return nll;
}

}  // namespace gt
