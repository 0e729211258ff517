// test_docs_examples.cpp: the code shown in README.md and docs/autograd.md, run as written, so the
// documentation cannot drift from the code.
#include <catch2/catch.hpp>

#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"

using namespace gt;

TEST_CASE("docs: README's tensor, op, backward example", "[docs]") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = Tensor::from_vector({0.5f, -1, 2}, {3, 1}).set_requires_grad();
  Tensor b = Tensor::zeros({1}).set_requires_grad();
  Tensor y = sigmoid(add(matmul(x, w), b));
  Tensor loss = mean(square(sub(y, Tensor::ones({2, 1}))));
  backward(loss);
  // By hand: a = x w = (4.5, 9); y = sigmoid(a); dL/dw = sum_b (y-1) y (1-y) x_b (mean over 2).
  double a[2] = {4.5, 9.0}, gw[3] = {0, 0, 0}, l = 0;
  for (int r = 0; r < 2; ++r) {
    double s = 1 / (1 + std::exp(-a[r]));
    l += (s - 1) * (s - 1) / 2;
    for (int k = 0; k < 3; ++k) gw[k] += (s - 1) * s * (1 - s) * (r * 3 + k + 1);
  }
  REQUIRE(loss.item() == Approx(l).epsilon(1e-5));
  std::vector<float> g = w.grad().to_vector();
  for (int k = 0; k < 3; ++k) REQUIRE(g[(size_t)k] == Approx(gw[k]).epsilon(1e-4));
}

TEST_CASE("docs: autograd.md's example records the tape it shows", "[docs]") {
  reset_tape();
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = Tensor::from_vector({0.5f, -1, 2}, {1, 3}).set_requires_grad();
  Tensor b = Tensor::zeros({1}).set_requires_grad();
  Tensor h = matmul(x, w, false, true);
  Tensor y = add(h, b);
  Tensor loss = mean(square(y));
  REQUIRE(tape_dump() ==
          "0: matmul (2, 3) (1, 3) -> (2, 1)\n"
          "1: add (2, 1) (1) -> (2, 1)\n"
          "2: square (2, 1) -> (2, 1)\n"
          "3: mean (2, 1) -> ()\n");
  backward(loss);
  REQUIRE(tape_size() == 0);
  // y = (4.5, 9); dL/dy = y; dL/db = 4.5 + 9; dL/dw = y^T x
  REQUIRE(b.grad().item() == Approx(13.5f));
  REQUIRE(w.grad().to_vector() == std::vector<float>{4.5f + 36, 9 + 45, 13.5f + 54});
  REQUIRE_FALSE(x.grad().defined());
  REQUIRE_THROWS_WITH(backward(loss), Catch::Contains("already released"));

  auto r = gradcheck([](const std::vector<Tensor>& in) { return tanh(mul(in[0], in[1])); },
                     {Tensor::from_vector({0.5f, -1.f}, {2}), Tensor::full({2}, 2.f)});
  REQUIRE(r.ok);
  REQUIRE(r.checked == 4);
  REQUIRE(r.message.rfind("gradcheck passed: 4 elements", 0) == 0);
}
