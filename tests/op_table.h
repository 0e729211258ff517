// op_table.h: the op test table. Each op is one OpRow; run_op_table() runs three checks per row
// (STYLE.md section 4):
//   1. forward against a naive double-precision reference computed here on the host;
//   2. gradients against central finite differences (gt::gradcheck);
//   3. CPU vs CUDA, forward and backward, |gpu - cpu| <= atol + rtol*|cpu| — in the [cuda] test
//      cases, which skip with a printed reason when no GPU is present.
// Inputs are drawn from a fixed Philox seed per row, so every failure reproduces.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/tensor.h"

namespace gt::test {

// How a row's input is filled.
struct InputSpec {
  enum Kind { Normal, Uniform, AwayFromZero, Indices } kind = Normal;
  Shape shape;
  float a = 1.0f, b = 1.0f;       // Normal: stddev a. Uniform: [a, b). AwayFromZero: |x| in [a, b).
  std::vector<int32_t> indices;   // Indices: the int32 values (shape must match)
};
inline InputSpec normal(Shape s, float stddev = 1.0f) { return {InputSpec::Normal, s, stddev, 0, {}}; }
inline InputSpec uniform(Shape s, float lo, float hi) { return {InputSpec::Uniform, s, lo, hi, {}}; }
// Values with lo <= |x| < hi and random sign: keeps inputs away from kinks at 0 (relu, abs).
inline InputSpec away_from_zero(Shape s, float lo = 0.1f, float hi = 2.0f) {
  return {InputSpec::AwayFromZero, s, lo, hi, {}};
}
inline InputSpec indices(Shape s, std::vector<int32_t> v) { return {InputSpec::Indices, s, 0, 0, std::move(v)}; }

// A host copy of an input in double, for references.
struct HostTensor {
  Shape shape;
  std::vector<double> v;      // float inputs
  std::vector<int32_t> idx;   // int32 inputs
};
struct RefResult {
  Shape shape;
  std::vector<double> v;
};
using RefFn = std::function<RefResult(const std::vector<HostTensor>&)>;

struct Tolerance {
  // Forward vs the double reference: float32 rounding of O(1) values over short sums.
  double fwd_atol = 1e-5, fwd_rtol = 1e-4;
  // Finite differences (see GradcheckOptions for why eps is 1e-2 in float32).
  double fd_eps = 1e-2, fd_atol = 1e-2, fd_rtol = 1e-2;
  // CPU vs CUDA: different summation orders and fast-math intrinsics differ by a few ulps.
  double dev_atol = 1e-4, dev_rtol = 1e-4;
};

struct OpRow {
  std::string name;
  std::vector<InputSpec> inputs;
  TensorFn op;
  RefFn ref;  // may be empty when the forward is checked elsewhere (e.g. against torch fixtures)
  Tolerance tol = {};
  uint64_t seed = 0;  // 0: derived from the name
};

// Builds a row's inputs on `device` (same values on every device).
std::vector<Tensor> make_inputs(const OpRow& row, Device device);
std::vector<HostTensor> to_host(const std::vector<Tensor>& inputs);

// The three checks; each REQUIREs inside a Catch2 section named after the row.
void check_forward(const OpRow& row);
void check_gradients(const OpRow& row);
void check_cpu_vs_cuda(const OpRow& row);

// Runs checks 1 and 2 for every row (call inside a TEST_CASE).
void run_op_table(const std::vector<OpRow>& rows);
// Runs check 3 for every row; prints why and returns when no GPU is present.
void run_op_table_cuda(const std::vector<OpRow>& rows);

// True when a CUDA device can run the [cuda] tests; otherwise WARNs the reason (shown in the test
// output) and returns false. Use as: if (!cuda_or_skip()) return;
bool cuda_or_skip();

// Compares two value lists elementwise: |got - want| <= atol + rtol*|want|; on failure reports the
// worst element with its index.
void require_close(const std::string& what, const std::vector<float>& got, const std::vector<double>& want,
                   double atol, double rtol);
void require_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                   double atol, double rtol);

// Row-major index helpers for references.
std::vector<int64_t> unravel(int64_t flat, const Shape& shape);
int64_t ravel(const std::vector<int64_t>& idx, const Shape& shape);

}  // namespace gt::test
