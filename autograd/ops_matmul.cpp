// ops_matmul.cpp: gt::matmul, C = op(A) op(B) for 2-D (M, K) x (K, N) and batched 3-D
// (B, M, K) x (B, K, N) operands, op(X) = X or X^T by the transpose flags (kernels/matmul.h).
//
// Derivative: with C = op(A) op(B) and upstream dC,
//   d op(A) = dC op(B)^T,   d op(B) = op(A)^T dC,
// and a stored-transposed operand receives the transpose of that: if ta, dA = op(B) dC^T;
// if tb, dB = dC^T op(A). Each is one GEMM accumulated straight into the gradient buffer (beta = 1).
#include <sstream>

#include "autograd/ops.h"
#include "core/dispatch.h"
#include "kernels/matmul.h"

namespace gt {

namespace {

// C (batch, M, N) = alpha * op(A) op(B) + beta * C over raw pointers of the tensors' device.
void gemm_dispatch(Device dev, bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, const float* A,
                   int64_t sa, const float* B, int64_t sb, float beta, float* C, int64_t sc) {
  GT_DISPATCH(dev, gemm_batched_cpu(ta, tb, batch, M, N, K, 1.0f, A, sa, B, sb, beta, C, sc),
              gemm_batched_cuda(ta, tb, batch, M, N, K, 1.0f, A, sa, B, sb, beta, C, sc));
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const char* op = "matmul";
  check_defined(op, a, "a");
  check_defined(op, b, "b");
  check_dtype_f32(op, a);
  check_dtype_f32(op, b);
  check_same_device(op, a, b);
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
        float* da = grad_buffer(a).data();
        if (!ta)  // dA (M, K) += dC (M, N) op(B)^T (N, K)
          gemm_dispatch(dev, false, !tb, batch, M, K, N, dc, sc, b.data(), sb, 1.0f, da, sa);
        else  // dA (K, M) += op(B) (K, N) dC^T (N, M)
          gemm_dispatch(dev, tb, true, batch, K, M, N, b.data(), sb, dc, sc, 1.0f, da, sa);
      }
      if (b.requires_grad()) {
        float* db = grad_buffer(b).data();
        if (!tb)  // dB (K, N) += op(A)^T (K, M) dC (M, N)
          gemm_dispatch(dev, !ta, false, batch, K, N, M, a.data(), sa, dc, sc, 1.0f, db, sb);
        else  // dB (N, K) += dC^T (N, M) op(A) (M, K)
          gemm_dispatch(dev, true, ta, batch, N, K, M, dc, sc, a.data(), sa, 1.0f, db, sb);
      }
    });
  }
  return out;
}

}  // namespace gt
