// gradcheck.cpp: analytic (one backward with seed w) vs central finite differences of sum(w * f).
#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/tape.h"
#include "core/rng.h"

namespace gt {

namespace {
double weighted_sum(const Tensor& y, const std::vector<float>& w) {
  std::vector<float> v = y.to_vector();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += (double)w[i] * (double)v[i];
  return s;
}
}  // namespace

GradcheckResult gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  GradcheckResult r;
  // Leaf copies, so the caller's tensors are untouched and their .grad is not polluted.
  std::vector<Tensor> xs;
  for (const Tensor& x : inputs) {
    check_defined("gradcheck", x, "an input");
    Tensor c = x.clone();
    if (c.dtype() == DType::F32) c.set_requires_grad(true);
    xs.push_back(c);
  }
  reset_tape();
  Tensor y = f(xs);
  check_defined("gradcheck", y, "f's output");
  Generator gen(opt.seed);
  Tensor w_host = gen.randn(y.shape(), Device::CPU);
  std::vector<float> w = w_host.to_vector();
  GT_CHECK(y.requires_grad(), "gradcheck: f's output does not depend on any float input");
  backward(y, w_host.to(y.device()));

  NoGradGuard no_grad;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (xs[i].dtype() != DType::F32) continue;
    Tensor g = xs[i].grad();
    std::vector<float> analytic = g.defined() ? g.to_vector() : std::vector<float>((size_t)xs[i].numel(), 0.f);
    std::vector<float> host = xs[i].to_vector();
    for (int64_t j = 0; j < xs[i].numel(); ++j) {
      const float orig = host[(size_t)j];
      host[(size_t)j] = (float)(orig + opt.eps);
      const double h_plus = (double)host[(size_t)j] - orig;  // the step actually taken in float
      xs[i].copy_(Tensor::from_vector(host, xs[i].shape(), xs[i].device()));
      double lp = weighted_sum(f(xs), w);
      host[(size_t)j] = (float)(orig - opt.eps);
      const double h_minus = orig - (double)host[(size_t)j];
      xs[i].copy_(Tensor::from_vector(host, xs[i].shape(), xs[i].device()));
      double lm = weighted_sum(f(xs), w);
      host[(size_t)j] = orig;
      xs[i].copy_(Tensor::from_vector(host, xs[i].shape(), xs[i].device()));

      double numeric = (lp - lm) / (h_plus + h_minus);
      double a = analytic[(size_t)j];
      double ratio = std::fabs(a - numeric) / (opt.atol + opt.rtol * std::fabs(numeric));
      r.checked++;
      if (ratio >= r.worst_ratio) {
        r.worst_ratio = ratio;
        r.worst_input = (int)i;
        r.worst_index = j;
        r.analytic = a;
        r.numeric = numeric;
      }
    }
  }
  r.ok = r.worst_ratio <= 1.0;
  std::ostringstream os;
  os << (r.ok ? "gradcheck passed" : "gradcheck FAILED") << ": " << r.checked << " elements; worst: input "
     << r.worst_input << " element " << r.worst_index << " analytic " << r.analytic << " numeric "
     << r.numeric << " (error/tolerance " << r.worst_ratio << ")";
  r.message = os.str();
  return r;
}

}  // namespace gt
