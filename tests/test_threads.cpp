// test_threads.cpp: the threaded CPU paths give the results of the serial ones. ctest runs every test
// with OMP_NUM_THREADS=1 (tests/CMakeLists.txt says why), so these set two threads themselves and
// use sizes above the parallel grains (kernels/parallel.h, core/rng.cpp), forward and backward.
#include <functional>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/device.h"
#include "core/rng.h"

using namespace gt;

namespace {

struct ThreadsGuard {
  int saved = num_threads();
  explicit ThreadsGuard(int n) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(saved); }
};

// Runs f with 1 and with 2 threads on the same inputs (fresh leaves each time) and compares the
// outputs and input gradients. Exact where the split leaves each element's arithmetic unchanged;
// `tol` covers reductions whose partial sums are grouped per thread.
void same_with_threads(const char* what, const std::vector<Shape>& shapes,
                       const std::function<Tensor(const std::vector<Tensor>&)>& f, double tol) {
  std::vector<std::vector<float>> values;
  Generator g(7);
  for (const Shape& s : shapes) values.push_back(g.randn(s).to_vector());
  std::vector<std::vector<float>> outs[2];
  for (int threads : {1, 2}) {
    ThreadsGuard guard(threads);
    std::vector<Tensor> in;
    for (size_t i = 0; i < shapes.size(); ++i)
      in.push_back(Tensor::from_vector(values[i], shapes[i]).set_requires_grad());
    Tensor y = f(in);
    backward(sum(y));
    auto& o = outs[threads - 1];
    o.push_back(y.to_vector());
    for (const Tensor& t : in) o.push_back(t.grad().to_vector());
  }
  for (size_t k = 0; k < outs[0].size(); ++k) {
    INFO(what << ": output " << k << " (0 = forward, then input gradients)");
    REQUIRE(outs[0][k].size() == outs[1][k].size());
    for (size_t i = 0; i < outs[0][k].size(); ++i)
      REQUIRE(outs[1][k][i] == Approx(outs[0][k][i]).margin(tol).epsilon(tol));
  }
}

}  // namespace

TEST_CASE("threads: two threads reproduce the serial results", "[threads]") {
  same_with_threads("elementwise", {{300, 300}, {300, 300}}, [](auto& in) { return sigmoid(in[0] * in[1] + in[0]); }, 0);
  same_with_threads("broadcast + sum over a dim", {{256, 512}, {512}},
                    [](auto& in) { return sum(relu(in[0] + in[1]), 1); }, 1e-5);
  same_with_threads("matmul", {{128, 300}, {300, 200}}, [](auto& in) { return matmul(in[0], in[1]); }, 1e-4);  // Eigen blocks K by thread count
  // The fused layer's epilogue and bias-gradient passes split rows / columns above their grain.
  same_with_threads("linear relu", {{256, 300}, {700, 300}, {700}},
                    [](auto& in) { return linear(in[0], in[1], in[2], LinearAct::Relu); }, 1e-4);
  // 12 -> 24 channels: the direct 3x3 kernels (not multiples of 16).
  same_with_threads("conv2d", {{8, 12, 20, 20}, {24, 12, 3, 3}, {24}},
                    [](auto& in) { return conv2d(in[0], in[1], in[2], 1, 1); }, 1e-4);
  // 16 -> 32: Winograd on AVX-512 (kernels/winograd.h). Its forward and input gradient are the same
  // bit for bit on any thread count (tests/test_winograd.cpp); its weight gradient sums per-thread
  // partials of the transformed gradient dU, whose rounding is ~2e-6 of the sum of |dy x| terms
  // (3200 of them here, ~2000 in all): up to ~4e-3 on entries of order 1-50.
  same_with_threads("conv2d (winograd)", {{8, 16, 20, 20}, {32, 16, 3, 3}, {32}},
                    [](auto& in) { return conv2d(in[0], in[1], in[2], 1, 1); }, 5e-3);
  same_with_threads("group_norm + silu", {{8, 32, 16, 16}, {32}, {32}},
                    [](auto& in) { return silu(group_norm(in[0], 8, in[1], in[2])); }, 1e-4);
  same_with_threads("softmax", {{512, 300}}, [](auto& in) { return softmax(in[0], -1) * in[0]; }, 1e-5);
  same_with_threads("bernoulli_nll", {{256, 784}, {256, 784}},
                    [](auto& in) { return bernoulli_nll(in[0], sigmoid(in[1])); }, 1e-4);
}

TEST_CASE("threads: big random draws are the same stream on any thread count", "[threads]") {
  std::vector<float> u[2], n[2];
  for (int threads : {1, 2}) {
    ThreadsGuard guard(threads);
    Generator g(3);
    g.set_offset(5);  // odd: the first block is partly skipped
    u[threads - 1] = g.rand({(1 << 19) + 3}).to_vector();
    n[threads - 1] = g.randn({(1 << 19) + 1}).to_vector();
  }
  REQUIRE(u[0] == u[1]);
  REQUIRE(n[0] == n[1]);
}
