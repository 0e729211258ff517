// tape.h: the tape — gentape's reverse-mode automatic differentiation.
//
// Every differentiable op (autograd/ops.h) computes its output with a kernel and, when grad mode is
// on and some input requires a gradient, appends one entry to the thread's tape: its name, its
// inputs, its output and a backward closure that saved only what the derivative needs. Ops run in
// order, so the tape is already topologically sorted: backward() walks it in reverse, handing each
// entry the gradient of its output and letting the closure accumulate (+=) into its inputs'
// gradient buffers. Then the tape is released. See docs/autograd.md for a walk-through.
//
//   gt::Tensor w = gt::Tensor::ones({3}).set_requires_grad();
//   gt::Tensor loss = gt::sum(gt::mul(w, w));   // recorded: mul, sum
//   gt::backward(loss);                          // w.grad() == 2 * w; the tape is now empty
//   { gt::NoGradGuard no_grad; auto y = gt::mul(w, w); }   // nothing recorded
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace gt {

// The backward closure of one entry: receives d(loss)/d(output) and accumulates into the inputs'
// gradient buffers (grad_buffer(x)). It must not assume any input requires a gradient — check
// x.requires_grad() first.
using BackwardFn = std::function<void(const Tensor& dout)>;

// ---- grad mode ----
bool grad_enabled();
// Turns recording off for its scope (evaluation, sampling, optimiser updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// ---- for op writers ----
// True when grad mode is on and any input requires a gradient: only then should an op record.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);
// Appends an entry producing `out` (which becomes a non-leaf that requires grad).
void record(const char* name, std::vector<Tensor> inputs, const Tensor& out, BackwardFn backward);
// The gradient accumulator of x: created zero-filled on x's device the first time, then reused.
// Backward closures add into it.
Tensor grad_buffer(const Tensor& x);
// The gradient buffer of x for a kernel that computes buf = beta * buf + contribution (a GEMM's
// beta): when x has no gradient yet the buffer is created *uninitialised* and beta is set to 0, so
// the kernel overwrites it and no zero-fill pass or read of zeros is spent; otherwise beta = 1 and
// the kernel accumulates. The caller must write every element when beta is 0.
Tensor grad_target(const Tensor& x, float* beta);
// The same for a kernel with an overwrite flag instead of a beta: on the CPU grad_target's buffer,
// *overwrite = (beta == 0); on a GPU, whose kernels only accumulate, grad_buffer's zero-filled one
// and *overwrite = false. Returns the buffer's data.
float* grad_dest(const Tensor& x, bool* overwrite);

// ---- running backward ----
// Back-propagates from a one-element `loss` (seed 1).
void backward(const Tensor& loss);
// Back-propagates from any recorded tensor with an explicit seed gradient `dout` (same shape).
void backward(const Tensor& output, const Tensor& dout);

// A tensor sharing x's storage but with no history and requires_grad false: gradients stop here.
Tensor detach(const Tensor& x);

// ---- inspection ----
size_t tape_size();       // entries recorded and not yet released
std::string tape_dump();  // one line per entry: index, op, input shapes -> output shape
// Drops every entry without running backward (e.g. after an evaluation pass that forgot
// NoGradGuard). Tensors recorded on it can no longer be back-propagated.
void reset_tape();

}  // namespace gt
