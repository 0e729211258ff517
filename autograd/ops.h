// ops.h: every differentiable op gentape has. Each computes its output with a kernel from kernels/
// (CPU or CUDA, by the inputs' device), validates shapes and devices first (errors name both
// sides), and records itself on the tape (autograd/tape.h) when an input requires a gradient.
// The derivative each one uses is written next to its implementation in autograd/ops_*.cpp.
//
//   using namespace gt;
//   Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
//   Tensor w = Tensor::ones({3, 4}).set_requires_grad();
//   Tensor loss = mean(relu(matmul(x, w)));
//   backward(loss);           // w.grad() now holds d loss / d w
//
// Broadcasting follows NumPy: shapes are aligned from the right and a dimension of size 1 (or a
// missing leading one) stretches to match; the gradient of a broadcast input is summed back to its
// own shape.
#pragma once

#include <vector>

#include "autograd/tape.h"
#include "core/tensor.h"
#include "kernels/linear.h"

namespace gt {

class Generator;

// ---- elementwise binary, with broadcasting (ops_elementwise.cpp) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

// ---- scalar arithmetic ----
Tensor add(const Tensor& a, float s);   // a + s
Tensor mul(const Tensor& a, float s);   // a * s
Tensor rsub(const Tensor& a, float s);  // s - a
Tensor rdiv(const Tensor& a, float s);  // s / a

// ---- elementwise unary ----
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor square(const Tensor& a);
Tensor pow(const Tensor& a, float p);  // a^p for a scalar exponent
Tensor abs(const Tensor& a);           // subgradient 0 at 0
Tensor relu(const Tensor& a);          // gradient 0 at 0
Tensor leaky_relu(const Tensor& a, float negative_slope = 0.01f);
Tensor sigmoid(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor silu(const Tensor& a);      // a * sigmoid(a)
Tensor softplus(const Tensor& a);  // log(1 + e^a), computed stably

// ---- operators (sugar for the functions above) ----
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, float s) { return add(a, s); }
inline Tensor operator+(float s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(const Tensor& a, float s) { return add(a, -s); }
inline Tensor operator-(float s, const Tensor& a) { return rsub(a, s); }
inline Tensor operator*(const Tensor& a, float s) { return mul(a, s); }
inline Tensor operator*(float s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, float s) { return mul(a, 1.0f / s); }
inline Tensor operator/(float s, const Tensor& a) { return rdiv(a, s); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// ---- reductions (ops_reduce.cpp) ----
Tensor sum(const Tensor& a);                                  // all elements -> shape ()
Tensor sum(const Tensor& a, int dim, bool keepdim = false);
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, int dim, bool keepdim = false);
Tensor max(const Tensor& a, int dim, bool keepdim = false);   // gradient to the first maximum
Tensor logsumexp(const Tensor& a, int dim, bool keepdim = false);

// ---- shape (ops_shape.cpp) ----
Tensor reshape(const Tensor& a, const Shape& shape);  // a view; one dim may be -1
Tensor transpose(const Tensor& a, int dim0, int dim1);
Tensor permute(const Tensor& a, const std::vector<int>& dims);
Tensor concat(const std::vector<Tensor>& tensors, int dim);
Tensor slice(const Tensor& a, int dim, int64_t start, int64_t end);  // [start, end) along dim
// Rows of `a` (along dim 0) picked by an int32 tensor of indices (minibatch gather, embeddings).
// Backward scatter-adds, so repeated indices accumulate.
Tensor index_select(const Tensor& a, const Tensor& indices);

// ---- linear algebra and convolution (ops_matmul.cpp, ops_conv.cpp) ----
// (M, K) x (K, N) -> (M, N), or batched (B, M, K) x (B, K, N) -> (B, M, N). With transpose flags
// the stored operand is read transposed: matmul(a, b, false, true) = a b^T for b of shape (N, K).
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);
// The fully connected layer fused with its bias and activation (kernels/linear.h): x (B, I),
// weight (O, I) (PyTorch's layout), bias (O) or undefined -> act(x weight^T + bias) (B, O). One tape
// entry and one (B, O) tensor instead of matmul + add + relu's three.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, LinearAct act = LinearAct::None);
// x (B, C, H, W), weight (O, C, kh, kw), bias (O) or undefined -> (B, O, Ho, Wo).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride = 1,
              int padding = 0);
// conv2d(x, weight, bias, 1, 1) + addend for a 3x3 weight (O, C, 3, 3), with addend (B, O, H, W) (a
// residual connection) or (B, O, 1, 1) (a per-image bias, broadcast over H x W): the U-Net's
// ResBlock adds both after its convolutions. On the CPU with the Winograd kernels
// (kernels/winograd.h) the addend goes into the convolution's own store, saving the add's pass
// over the output; elsewhere it is conv2d then add. Values and gradients are those of the two ops.
Tensor conv2d_add(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& addend);
// x (B, C, H, W), weight (C, O, kh, kw) (PyTorch's layout), bias (O) or undefined ->
// (B, O, (H-1)*stride - 2*padding + kh + output_padding, ...).
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride = 1,
                        int padding = 0, int output_padding = 0);
// Nearest-neighbour upsampling by an integer factor: (B, C, H, W) -> (B, C, H*s, W*s).
Tensor upsample_nearest2d(const Tensor& x, int scale);
// Average pooling, no padding: (B, C, H, W) -> (B, C, (H-k)/s+1, (W-k)/s+1).
Tensor avg_pool2d(const Tensor& x, int kernel, int stride);

// ---- VAE losses and sampling, fused (ops_vae.cpp; equations in kernels/vae.h) ----
// z = mu + exp(logvar / 2) * eps with eps ~ N(0, I): the next mu.numel() normals of gen's Philox
// stream (exactly what gen.normal would draw; gen advances). eps_out, when given, receives eps.
Tensor reparameterize(const Tensor& mu, const Tensor& logvar, Generator& gen, Tensor* eps_out = nullptr);
// KL(N(mu, diag e^logvar) || N(0, I)) per row: mu, logvar (B, D) -> (B).
Tensor kl_normal(const Tensor& mu, const Tensor& logvar);
// -log Bernoulli(x | sigmoid(logits)) per row, computed stably from the logits: (B, D) -> (B).
Tensor bernoulli_nll(const Tensor& logits, const Tensor& x);
// -log N(x | mean, diag e^logvar) per row; logvar is a scalar, (D) or (B, D): (B, D) -> (B).
// A fixed variance is a logvar that does not require grad; a learned one is a parameter.
Tensor gaussian_nll(const Tensor& mean, const Tensor& x, const Tensor& logvar);

// ---- normalisation, softmax and the time embedding (ops_norm.cpp; kernels/norm.h, softmax.h,
// embedding.h) ----
// x (N, C, *spatial) -> same shape; statistics over (C/groups channels x spatial) per (sample, group),
// biased variance, y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c]; weight/bias (C). PyTorch's GroupNorm.
// weight and bias may be undefined (no affine transform: 1 and 0).
Tensor group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);
// silu(group_norm(x, ...)) in one op (a ResBlock's GN-SiLU pair): on the CPU one pass writes only the
// SiLU output and the backward recomputes the normalised values, so the GroupNorm output is never
// stored or read back; elsewhere the two ops composed.
Tensor group_norm_silu(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);
// softmax along dim (any dim; fast path for the last one), computed stably (max subtracted).
Tensor softmax(const Tensor& a, int dim = -1);
// Sinusoidal embedding of timesteps (Ho et al. 2020 / Vaswani et al.): t (B) float32 (values like 0..999),
// half = dim / 2, freq_j = exp(-ln(10000) * j / half), out[b] = concat(sin(t_b freq), cos(t_b freq)) (B, dim).
// dim must be even. Records nothing on the tape (a constant input to the network).
Tensor timestep_embedding(const Tensor& t, int dim);

// ---- DDPM ε-prediction loss, fused (ops_diffusion.cpp; equations in kernels/diffusion.h) ----
// mse_b = sum_j (eps_pred_bj - eps_bj)^2 / D per sample: (B, ...) -> (B), D = numel / B. The
// per-sample values let a trainer report the loss per timestep bucket; mean() of it is the loss.
Tensor ddpm_eps_loss(const Tensor& eps_pred, const Tensor& eps);

}  // namespace gt
