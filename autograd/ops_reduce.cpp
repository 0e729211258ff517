// ops_reduce.cpp: the differentiable reductions — sum, mean, max, logsumexp (kernels/reduce.h has
// the kernels and the equations).
//
// A reduction along dim d views the input as (outer, n, inner) (outer = prod of dims before d,
// inner = prod after); the output is (outer, inner) with shape = the input's without dim d, or with
// it set to 1 when keepdim. Both layouts are the same memory, so the backward reads dout the same
// way either way. Negative dims count from the end (-1: the last).
#include <cstdint>

#include "autograd/ops.h"
#include "core/dispatch.h"
#include "kernels/reduce.h"

namespace gt {

namespace {

struct Split {
  int dim;  // normalised (0 <= dim < ndim)
  int64_t outer, n, inner;
  Shape out_shape;
};

// Validates the input and dim and splits the shape around it.
Split split_at(const char* op, const Tensor& a, int dim, bool keepdim) {
  check_defined(op, a, "the input");
  check_dtype_f32(op, a);
  const Shape& s = a.shape();
  const int nd = s.size();
  const int d = dim < 0 ? dim + nd : dim;
  GT_CHECK(d >= 0 && d < nd, op << ": dim " << dim << " is out of range for shape " << s << " (valid dims: "
                                << -nd << " to " << nd - 1 << ")");
  Split sp{d, 1, s[d], 1, Shape{}};
  for (int i = 0; i < d; ++i) sp.outer *= s[i];
  for (int i = d + 1; i < nd; ++i) sp.inner *= s[i];
  for (int i = 0; i < nd; ++i) {
    if (i != d)
      sp.out_shape.push_back(s[i]);
    else if (keepdim)
      sp.out_shape.push_back(1);
  }
  return sp;
}

// sum or mean of every element: y = scale * sum_i x_i
Tensor reduce_all(const char* op, const Tensor& a, bool is_mean) {
  check_defined(op, a, "the input");
  check_dtype_f32(op, a);
  const int64_t n = a.numel();
  // mean of no elements is 0 * (1/0) = NaN, as in NumPy and PyTorch.
  const float scale = is_mean ? 1.0f / (float)n : 1.0f;
  Tensor out = Tensor::empty(Shape{}, a.device());
  GT_DISPATCH(a.device(), sum_all_forward_cpu(out.data(), a.data(), n, scale),
              sum_all_forward_cuda(out.data(), a.data(), n, scale));
  if (needs_grad({&a})) {
    // dy/dx_i = scale: dx += scale * dout, dout broadcast to every element.
    record(op, {a}, out, [a, n, scale](const Tensor& dout) {
      if (!a.requires_grad()) return;
      Tensor dx = grad_buffer(a);
      GT_DISPATCH(a.device(), sum_all_backward_cpu(dx.data(), dout.data(), n, scale),
                  sum_all_backward_cuda(dx.data(), dout.data(), n, scale));
    });
  }
  return out;
}

// sum or mean along dim: y[o,i] = scale * sum_k x[o,k,i]
Tensor reduce_dim(const char* op, const Tensor& a, int dim, bool keepdim, bool is_mean) {
  const Split sp = split_at(op, a, dim, keepdim);
  const float scale = is_mean ? 1.0f / (float)sp.n : 1.0f;
  Tensor out = Tensor::empty(sp.out_shape, a.device());
  GT_DISPATCH(a.device(), sum_dim_forward_cpu(out.data(), a.data(), sp.outer, sp.n, sp.inner, scale),
              sum_dim_forward_cuda(out.data(), a.data(), sp.outer, sp.n, sp.inner, scale));
  if (needs_grad({&a})) {
    // dy[o,i]/dx[o,k,i] = scale for every k: dx += scale * dout broadcast along dim.
    record(op, {a}, out, [a, sp, scale](const Tensor& dout) {
      if (!a.requires_grad()) return;
      Tensor dx = grad_buffer(a);
      GT_DISPATCH(a.device(), sum_dim_backward_cpu(dx.data(), dout.data(), sp.outer, sp.n, sp.inner, scale),
                  sum_dim_backward_cuda(dx.data(), dout.data(), sp.outer, sp.n, sp.inner, scale));
    });
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& a) { return reduce_all("sum", a, false); }
Tensor mean(const Tensor& a) { return reduce_all("mean", a, true); }
Tensor sum(const Tensor& a, int dim, bool keepdim) { return reduce_dim("sum", a, dim, keepdim, false); }
Tensor mean(const Tensor& a, int dim, bool keepdim) { return reduce_dim("mean", a, dim, keepdim, true); }

Tensor max(const Tensor& a, int dim, bool keepdim) {
  const Split sp = split_at("max", a, dim, keepdim);
  GT_CHECK(sp.n > 0, "max: cannot take the maximum over dim " << dim << " of size 0 (shape " << a.shape() << ")");
  GT_CHECK(sp.n <= INT32_MAX, "max: dim " << dim << " of shape " << a.shape() << " is too long for int32 argmax");
  Tensor out = Tensor::empty(sp.out_shape, a.device());
  const bool grad = needs_grad({&a});
  // The argmax is only kept when backward will need it.
  Tensor argmax = grad ? Tensor::empty(sp.out_shape, a.device(), DType::I32) : Tensor();
  int32_t* am = grad ? argmax.data_i32() : nullptr;
  GT_DISPATCH(a.device(), max_dim_forward_cpu(out.data(), am, a.data(), sp.outer, sp.n, sp.inner),
              max_dim_forward_cuda(out.data(), am, a.data(), sp.outer, sp.n, sp.inner));
  if (grad) {
    // dy[o,i]/dx[o,k,i] = 1 if k is the first maximum, else 0: dx[o, argmax, i] += dout[o,i].
    record("max", {a}, out, [a, argmax, sp](const Tensor& dout) {
      if (!a.requires_grad()) return;
      Tensor dx = grad_buffer(a);
      GT_DISPATCH(a.device(),
                  max_dim_backward_cpu(dx.data(), dout.data(), argmax.data_i32(), sp.outer, sp.n, sp.inner),
                  max_dim_backward_cuda(dx.data(), dout.data(), argmax.data_i32(), sp.outer, sp.n, sp.inner));
    });
  }
  return out;
}

Tensor logsumexp(const Tensor& a, int dim, bool keepdim) {
  const Split sp = split_at("logsumexp", a, dim, keepdim);
  Tensor out = Tensor::empty(sp.out_shape, a.device());
  GT_DISPATCH(a.device(), logsumexp_forward_cpu(out.data(), a.data(), sp.outer, sp.n, sp.inner),
              logsumexp_forward_cuda(out.data(), a.data(), sp.outer, sp.n, sp.inner));
  if (needs_grad({&a})) {
    // dy[o,i]/dx[o,k,i] = exp(x[o,k,i] - y[o,i]) = softmax_k: dx += softmax * dout. Saves x and y
    // (not the softmax): recomputing one exp per element is cheaper than storing a second x-sized
    // tensor across the whole forward pass.
    record("logsumexp", {a}, out, [a, out, sp](const Tensor& dout) {
      if (!a.requires_grad()) return;
      Tensor dx = grad_buffer(a);
      GT_DISPATCH(a.device(),
                  logsumexp_backward_cpu(dx.data(), dout.data(), a.data(), out.data(), sp.outer, sp.n, sp.inner),
                  logsumexp_backward_cuda(dx.data(), dout.data(), a.data(), out.data(), sp.outer, sp.n, sp.inner));
    });
  }
  return out;
}

}  // namespace gt
