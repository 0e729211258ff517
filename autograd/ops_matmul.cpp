// ops_matmul.cpp: gt::matmul, C = op(A) op(B) for 2-D (M, K) x (K, N) and batched 3-D
// (B, M, K) x (B, K, N) operands, op(X) = X or X^T by the transpose flags (kernels/matmul.h).
//
// Derivative: with C = op(A) op(B) and upstream dC,
//   d op(A) = dC op(B)^T,   d op(B) = op(A)^T dC,
// and a stored-transposed operand receives the transpose of that: if ta, dA = op(B) dC^T;
// if tb, dB = dC^T op(A). Each is one GEMM straight into the gradient buffer: beta = 1 accumulates
// into an existing gradient, beta = 0 writes a fresh one (grad_target: no zero-fill pass).
//
// linear(x, W, b, act) = act(x W^T + b) is the same GEMM with an epilogue (kernels/linear.h):
//   g = dy * act'(y);  db += sum_rows g;  dx (+)= g W;  dW (+)= g^T x.
#include <sstream>

#include "autograd/ops.h"
#include "core/dispatch.h"
#include "kernels/linear.h"
#include "kernels/matmul.h"

namespace gt {

namespace {

// C (batch, M, N) = alpha * op(A) op(B) + beta * C over raw pointers of the tensors' device.
void gemm_dispatch(Device dev, bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, const float* A,
                   int64_t sa, const float* B, int64_t sb, float beta, float* C, int64_t sc) {
  GT_DISPATCH(dev, gemm_batched_cpu(ta, tb, batch, M, N, K, 1.0f, A, sa, B, sb, beta, C, sc),
              gemm_batched_cuda(ta, tb, batch, M, N, K, 1.0f, A, sa, B, sb, beta, C, sc));
}

// Both operands defined, float32 and on one device; errors name the op and the operand.
void check_operands(const char* op, const Tensor& a, const char* a_name, const Tensor& b, const char* b_name) {
  check_defined(op, a, a_name);
  check_defined(op, b, b_name);
  check_dtype_f32(op, a);
  check_dtype_f32(op, b);
  check_same_device(op, a, b);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const char* op = "matmul";
  check_operands(op, a, "a", b, "b");
  const bool ta = transpose_a, tb = transpose_b;
  auto describe = [&]() {
    std::ostringstream os;
    os << "a " << a.shape() << (ta ? " (transposed)" : "") << " and b " << b.shape() << (tb ? " (transposed)" : "");
    return os.str();
  };
  GT_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3),
           "matmul: expected two 2-D (M, K) x (K, N) or two 3-D (B, M, K) x (B, K, N) operands, got "
               << describe());
  const bool batched = a.dim() == 3;
  const int64_t batch = batched ? a.size(0) : 1;
  GT_CHECK(!batched || b.size(0) == batch, "matmul: batch sizes differ: " << describe());
  const int64_t M = ta ? a.size(-1) : a.size(-2), K = ta ? a.size(-2) : a.size(-1);
  const int64_t Kb = tb ? b.size(-1) : b.size(-2), N = tb ? b.size(-2) : b.size(-1);
  GT_CHECK(K == Kb, "matmul: cannot multiply " << describe() << ": inner dimensions " << K << " and " << Kb
                                               << " differ");

  Tensor out = Tensor::empty(batched ? Shape{batch, M, N} : Shape{M, N}, a.device());
  const int64_t sa = M * K, sb = K * N, sc = M * N;
  gemm_dispatch(a.device(), ta, tb, batch, M, N, K, a.data(), sa, b.data(), sb, 0.0f, out.data(), sc);

  if (needs_grad({&a, &b})) {
    record(op, {a, b}, out, [a, b, ta, tb, batch, M, N, K, sa, sb, sc](const Tensor& dout) {
      const Device dev = dout.device();
      const float* dc = dout.data();  // dC (batch, M, N)
      if (a.requires_grad()) {
        float beta;
        float* da = grad_target(a, &beta).data();
        if (!ta)  // dA (M, K) (+)= dC (M, N) op(B)^T (N, K)
          gemm_dispatch(dev, false, !tb, batch, M, K, N, dc, sc, b.data(), sb, beta, da, sa);
        else  // dA (K, M) (+)= op(B) (K, N) dC^T (N, M)
          gemm_dispatch(dev, tb, true, batch, K, M, N, b.data(), sb, dc, sc, beta, da, sa);
      }
      if (b.requires_grad()) {
        float beta;
        float* db = grad_target(b, &beta).data();
        if (!tb)  // dB (K, N) (+)= op(A)^T (K, M) dC (M, N)
          gemm_dispatch(dev, !ta, false, batch, K, N, M, a.data(), sa, dc, sc, beta, db, sb);
        else  // dB (N, K) (+)= dC^T (N, M) op(A) (M, K)
          gemm_dispatch(dev, true, ta, batch, N, K, M, dc, sc, a.data(), sa, beta, db, sb);
      }
    });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, LinearAct act) {
  const char* op = "linear";
  check_operands(op, x, "x", weight, "weight");
  GT_CHECK(weight.dim() == 2, "linear: weight must be (out, in), got shape " << weight.shape());
  const int64_t O = weight.size(0), I = weight.size(1);
  GT_CHECK(x.dim() == 2 && x.size(1) == I,
           "linear: input shape " << x.shape() << " does not match weight " << weight.shape() << ": expected (B, " << I
                                  << ")");
  if (bias.defined()) {
    check_dtype_f32(op, bias);
    check_same_device(op, x, bias);
    GT_CHECK(bias.dim() == 1 && bias.size(0) == O,
             "linear: bias shape " << bias.shape() << " does not match weight " << weight.shape() << ": expected (" << O
                                   << ")");
  }
  const int64_t B = x.size(0);
  const Device dev = x.device();
  Tensor out = Tensor::empty({B, O}, dev);
  // y (B, O) = act(x (B, I) W^T + b), the epilogue applied while the GEMM's block is in cache.
  const float* bp = bias.defined() ? bias.data() : nullptr;
  GT_DISPATCH(dev, linear_forward_cpu(out.data(), x.data(), weight.data(), bp, B, I, O, act),
              linear_forward_cuda(out.data(), x.data(), weight.data(), bp, B, I, O, act));

  if (needs_grad({&x, &weight, &bias})) {
    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    // The closure keeps y (= out) for the ReLU mask; the pre-activation is never stored.
    record(op, std::move(inputs), out, [x, weight, bias, y = out, act, B, I, O](const Tensor& dout) {
      const Device dev = dout.device();
      float* db = nullptr;
      float db_beta = 0.0f;
      if (bias.defined() && bias.requires_grad()) db = grad_target(bias, &db_beta).data();
      // g = dy * act'(y) and db (+)= sum_rows g in one pass; with no activation g is dy itself.
      Tensor g = act == LinearAct::None ? dout : Tensor::empty({B, O}, dev);
      if (db || act != LinearAct::None)
        GT_DISPATCH(dev, linear_backward_act_cpu(g.data(), db, dout.data(), y.data(), B, O, act, db_beta),
                    linear_backward_act_cuda(g.data(), db, dout.data(), y.data(), B, O, act, db_beta));
      if (x.requires_grad()) {  // dx (B, I) (+)= g (B, O) W (O, I)
        float beta;
        float* dx = grad_target(x, &beta).data();
        gemm_dispatch(dev, false, false, 1, B, I, O, g.data(), 0, weight.data(), 0, beta, dx, 0);
      }
      if (weight.requires_grad()) {  // dW (O, I) (+)= g^T (O, B) x (B, I)
        float beta;
        float* dw = grad_target(weight, &beta).data();
        gemm_dispatch(dev, true, false, 1, O, I, B, g.data(), 0, x.data(), 0, beta, dw, 0);
      }
    });
  }
  return out;
}

}  // namespace gt
