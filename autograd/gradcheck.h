// gradcheck.h: check any differentiable function's gradients against finite differences.
//
// For f: inputs -> y, gradcheck draws a fixed random weight w shaped like y and compares, for every
// element x_ij of every float input, the analytic derivative of L = sum(w * f(x)) (one backward
// pass with seed w) with the central difference (L(x + eps) - L(x - eps)) / (2 eps). L is summed in
// double on the host so the difference is not lost to float rounding. It reports the worst element,
// so a failure says where to look. Use it on your own ops:
//
//   auto r = gt::gradcheck([](const std::vector<gt::Tensor>& in) { return gt::tanh(in[0] * in[1]); },
//                          {gt::Tensor::from_vector({0.5f, -1.f}, {2}), gt::Tensor::full({2}, 2.f)});
//   if (!r.ok) std::cerr << r.message << "\n";
//
// Inputs are never modified (gradcheck works on copies); int32 inputs (indices) are passed through
// unchecked. Keep inputs at least eps away from kinks (relu/abs at 0, max ties): the finite
// difference is meaningless across one.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace gt {

struct GradcheckOptions {
  // Step of the central difference. Inputs are float32, so the step cannot be tiny: the rounding
  // error of L grows like ulp(L)/eps while the truncation error shrinks like eps^2; 1e-2 balances
  // them for O(1) inputs.
  double eps = 1e-2;
  // An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
  double atol = 1e-2;
  double rtol = 1e-2;
  uint64_t seed = 1234;  // for the random weight w
};

struct GradcheckResult {
  bool ok = true;
  int worst_input = -1;     // which input holds the worst element (-1: nothing checked)
  int64_t worst_index = -1;  // its flat index
  double analytic = 0, numeric = 0;
  double worst_ratio = 0;   // |analytic - numeric| / (atol + rtol*|numeric|); > 1 fails
  int64_t checked = 0;      // elements compared
  std::string message;      // a one-line summary naming the worst element
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradcheckResult gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt = {});

}  // namespace gt
