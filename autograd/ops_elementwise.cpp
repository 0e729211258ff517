// ops_elementwise.cpp: the differentiable elementwise ops — add/sub/mul/div with NumPy
// broadcasting, scalar arithmetic, and the unary maps (neg, exp, log, ..., softplus).
//
//   binary:  out = a op b                 da += sum_to_shape(dout * d(a op b)/da, shape of a)
//                                         db += sum_to_shape(dout * d(a op b)/db, shape of b)
//   unary:   y = f(x; p)                  dx += dout * f'(x, y; p)
//
// The scalar math and the derivatives are the functors of kernels/elementwise.h (one table of
// equations at its top); this file validates, allocates, dispatches and records. Each backward
// saves only what its derivative reads: x, y (the output: exp, sqrt, sigmoid, tanh reuse it) or
// neither.
#include "autograd/ops.h"
#include "core/dispatch.h"
#include "kernels/elementwise.h"

namespace gt {

namespace {

template <class Op>
Tensor unary(const char* name, const Tensor& x, float p = 0.f) {
  check_defined(name, x, "the input");
  check_dtype_f32(name, x);
  Tensor y = Tensor::empty(x.shape(), x.device());
  const int64_t n = x.numel();
  GT_DISPATCH(x.device(), unary_forward_cpu<Op>(y.data(), x.data(), n, p),
              unary_forward_cuda<Op>(y.data(), x.data(), n, p));
  if (needs_grad({&x})) {
    // Saved: x itself (for its gradient buffer, and its values when Op::kUsesX) and, when the
    // derivative is written in terms of the output (kUsesY), y.
    Tensor ys = Op::kUsesY ? y : Tensor();
    record(name, {x}, y, [x, ys, p](const Tensor& dout) {
      // dx += dout * f'(x, y)   (the derivatives are tabled in kernels/elementwise.h)
      if (!x.requires_grad()) return;
      const float* xp = Op::kUsesX ? x.data() : nullptr;
      const float* yp = Op::kUsesY ? ys.data() : nullptr;
      const int64_t n = x.numel();
      bool overwrite;  // the CPU writes the first gradient into x's buffer (grad_dest)
      float* dx = grad_dest(x, &overwrite);
      GT_DISPATCH(x.device(), unary_backward_cpu<Op>(dx, dout.data(), xp, yp, n, p, overwrite),
                  unary_backward_cuda<Op>(dx, dout.data(), xp, yp, n, p));
    });
  }
  return y;
}

// dx (x's shape) += scale * g (out's shape) summed over the dims x was broadcast along.
void sum_to_shape(const Tensor& dx, const Tensor& g, float scale) {
  const ReducePlan rp = make_reduce_plan(g.shape(), dx.shape());
  GT_DISPATCH(g.device(), sum_to_shape_cpu(dx.data(), g.data(), rp, scale),
              sum_to_shape_cuda(dx.data(), g.data(), rp, scale));
}

template <class Op>
Tensor binary(const char* name, const Tensor& a, const Tensor& b) {
  check_defined(name, a, "the first operand");
  check_defined(name, b, "the second operand");
  check_same_device(name, a, b);
  check_dtype_f32(name, a);
  check_dtype_f32(name, b);
  Shape out_shape;
  GT_CHECK(broadcast_shapes(a.shape(), b.shape(), &out_shape),
           name << ": shapes " << a.shape() << " and " << b.shape() << " cannot be broadcast");
  const BroadcastPlan plan = make_broadcast_plan(a.shape(), b.shape());
  Tensor out = Tensor::empty(out_shape, a.device());
  GT_DISPATCH(a.device(), binary_forward_cpu<Op>(out.data(), a.data(), b.data(), plan),
              binary_forward_cuda<Op>(out.data(), a.data(), b.data(), plan));
  if (needs_grad({&a, &b})) {
    record(name, {a, b}, out, [a, b, plan](const Tensor& dout) {
      // d(a op b)/da = Op::da(a, b), d(a op b)/db = Op::db(a, b) (add: 1, 1; sub: 1, -1;
      // mul: b, a; div: 1/b, -a/b^2), times dout, summed back over each operand's broadcast dims.
      for (int side = 0; side < 2; ++side) {
        const Tensor& x = side == 0 ? a : b;
        if (!x.requires_grad()) continue;
        if (Op::kConstantGrad && x.shape() == dout.shape()) {
          // add / sub, x not broadcast: dx (+)= +-dout; the first gradient on the CPU is written (grad_dest)
          bool overwrite;
          float* dx = grad_dest(x, &overwrite);
          const float sign = side == 0 ? Op::da(0.f, 0.f) : Op::db(0.f, 0.f);
          if (overwrite)
            unary_forward_cpu<MulScalarOp>(dx, dout.data(), dout.numel(), sign);
          else
            sum_to_shape(x.grad(), dout, sign);
          continue;
        }
        Tensor dx = grad_buffer(x);
        if (Op::kConstantGrad) {  // the partial is +-1: reduce dout itself
          sum_to_shape(dx, dout, side == 0 ? Op::da(0.f, 0.f) : Op::db(0.f, 0.f));
        } else if (x.numel() == dout.numel()) {  // x was not broadcast: accumulate in place
          GT_DISPATCH(dout.device(),
                      binary_backward_cpu<Op>(dx.data(), dout.data(), a.data(), b.data(), plan, side, true),
                      binary_backward_cuda<Op>(dx.data(), dout.data(), a.data(), b.data(), plan, side, true));
        } else {  // out-shaped temporary, then reduce
          Tensor g = Tensor::empty(dout.shape(), dout.device());
          GT_DISPATCH(dout.device(),
                      binary_backward_cpu<Op>(g.data(), dout.data(), a.data(), b.data(), plan, side, false),
                      binary_backward_cuda<Op>(g.data(), dout.data(), a.data(), b.data(), plan, side, false));
          sum_to_shape(dx, g, 1.f);
        }
      }
    });
  }
  return out;
}

}  // namespace

// ---- binary, broadcasting ----
Tensor add(const Tensor& a, const Tensor& b) { return binary<AddOp>("add", a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary<SubOp>("sub", a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary<MulOp>("mul", a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary<DivOp>("div", a, b); }

// ---- scalar arithmetic ----
Tensor add(const Tensor& a, float s) { return unary<AddScalarOp>("add_scalar", a, s); }
Tensor mul(const Tensor& a, float s) { return unary<MulScalarOp>("mul_scalar", a, s); }
Tensor rsub(const Tensor& a, float s) { return unary<RsubScalarOp>("rsub", a, s); }
Tensor rdiv(const Tensor& a, float s) { return unary<RdivScalarOp>("rdiv", a, s); }

// ---- unary ----
Tensor neg(const Tensor& a) { return unary<NegOp>("neg", a); }
Tensor exp(const Tensor& a) { return unary<ExpOp>("exp", a); }
Tensor log(const Tensor& a) { return unary<LogOp>("log", a); }
Tensor sqrt(const Tensor& a) { return unary<SqrtOp>("sqrt", a); }
Tensor square(const Tensor& a) { return unary<SquareOp>("square", a); }
Tensor pow(const Tensor& a, float p) { return unary<PowOp>("pow", a, p); }
Tensor abs(const Tensor& a) { return unary<AbsOp>("abs", a); }
Tensor relu(const Tensor& a) { return unary<ReluOp>("relu", a); }
Tensor leaky_relu(const Tensor& a, float negative_slope) { return unary<LeakyReluOp>("leaky_relu", a, negative_slope); }
Tensor sigmoid(const Tensor& a) { return unary<SigmoidOp>("sigmoid", a); }
Tensor tanh(const Tensor& a) { return unary<TanhOp>("tanh", a); }
Tensor silu(const Tensor& a) { return unary<SiluOp>("silu", a); }
Tensor softplus(const Tensor& a) { return unary<SoftplusOp>("softplus", a); }

}  // namespace gt
