// linear.h: the fully connected layer fused with its bias and activation, y = act(x W^T + b).
//
//   forward    y (B, O) = act(x (B, I) W^T + b),   W (O, I) (PyTorch's layout), b (O), act = id | ReLU
//   backward   g = dy * act'(y)      ReLU: act'(y) = [y > 0], read from the output (y > 0 exactly when
//                                     the pre-activation is), so the pre-activation is never stored
//              db += sum_b g_b;      dx = beta dx + g W;      dW = beta dW + g^T x
//
// Why fused: unfused, a layer is matmul, a broadcast add and a ReLU, three tape entries, two extra
// (B, O) tensors and, backward, a broadcast-reducing sum and a ReLU mask pass. Here the GEMM writes
// y and one pass over the (B, O) block — still in cache — adds the bias and applies the
// activation (the GEMM's epilogue); backward one pass makes g and the bias gradient together.
// The GEMMs are kernels/matmul.h's; this file holds the two passes around them.
//
//   gt::linear_forward_cpu(y, x, w, b, B, I, O, gt::LinearAct::Relu);    // y = relu(x W^T + b)
//   gt::linear_backward_act_cpu(g, db, dy, y, B, O, gt::LinearAct::Relu, 1.f);
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace gt {

enum class LinearAct : int { None = 0, Relu = 1 };

GT_HD inline float linear_act(LinearAct act, float v) { return act == LinearAct::Relu ? (v > 0.f ? v : 0.f) : v; }
// act'(pre) from the output y = act(pre): ReLU's y > 0 iff pre > 0 (gradient 0 at 0, as gt::relu).
GT_HD inline float linear_act_grad(LinearAct act, float y) { return act == LinearAct::Relu ? (y > 0.f ? 1.f : 0.f) : 1.f; }

// y (B, O) = act(x (B, I) W^T + b), W (O, I), b (O) or null: the whole forward. On the CPU one
// pass (gemm_bias_act_cpu: the epilogue runs on each thread's block of the GEMM); on CUDA cuBLAS,
// then linear_epilogue_cuda.
void linear_forward_cpu(float* y, const float* x, const float* w, const float* b, int64_t B, int64_t I, int64_t O,
                        LinearAct act);
void linear_forward_cuda(float* y, const float* x, const float* w, const float* b, int64_t B, int64_t I, int64_t O,
                         LinearAct act);

// y (B, O) = act(y + b) in place; b (O) may be null (no bias). CUDA only: the CPU's epilogue runs
// inside the GEMM's thread blocks (linear_forward_cpu).
void linear_epilogue_cuda(float* y, const float* b, int64_t B, int64_t O, LinearAct act);

// g (B, O) = dy * act'(y); db (O) = db_beta * db + sum over rows of g (db may be null: no bias or
// no gradient wanted). db_beta is 0 (db uninitialised, overwritten) or 1 (accumulate).
// g may alias dy (the mask is applied in place).
void linear_backward_act_cpu(float* g, float* db, const float* dy, const float* y, int64_t B, int64_t O,
                             LinearAct act, float db_beta);
void linear_backward_act_cuda(float* g, float* db, const float* dy, const float* y, int64_t B, int64_t O,
                              LinearAct act, float db_beta);

}  // namespace gt
