// test_tape.cpp: tape semantics — accumulation when a tensor is used twice, diamond graphs, leaf
// gradients accumulating across passes, no-grad scopes, detach, and the released-tape error.
#include <catch2/catch.hpp>

#include "autograd/ops.h"
#include "tests/op_table.h"

using namespace gt;

namespace {
Tensor leaf(std::vector<float> v) {
  Tensor t = Tensor::from_vector(v, {(int64_t)v.size()});
  t.set_requires_grad();
  return t;
}
}  // namespace

TEST_CASE("tape: d/dx sum(x*x) = 2x", "[tape]") {
  Tensor x = leaf({1, -2, 3});
  Tensor loss = sum(mul(x, x));
  REQUIRE(loss.item() == 14.f);
  REQUIRE(tape_size() == 2);
  backward(loss);
  REQUIRE(tape_size() == 0);
  REQUIRE(x.grad().to_vector() == std::vector<float>{2, -4, 6});
}

TEST_CASE("tape: a tensor used twice accumulates both gradients", "[tape]") {
  Tensor x = leaf({1, 2});
  Tensor y = add(mul(x, x), x);  // dy/dx = 2x + 1
  backward(sum(y));
  REQUIRE(x.grad().to_vector() == std::vector<float>{3, 5});
}

TEST_CASE("tape: diamond graph", "[tape]") {
  // a = 2x; b = a*a; c = 3a; loss = sum(b + c)  =>  dloss/dx = (2a + 3) * 2 = 8x + 6
  Tensor x = leaf({0.5f, -1.f, 2.f});
  Tensor a = mul(x, 2.f);
  Tensor loss = sum(add(mul(a, a), mul(a, 3.f)));
  backward(loss);
  std::vector<float> g = x.grad().to_vector();
  REQUIRE(g[0] == Approx(10.f));
  REQUIRE(g[1] == Approx(-2.f));
  REQUIRE(g[2] == Approx(22.f));
  // Intermediate gradients are freed once used; only leaves keep theirs.
  REQUIRE_FALSE(a.grad().defined());
}

TEST_CASE("tape: leaf gradients accumulate across passes until zero_grad", "[tape]") {
  Tensor x = leaf({1, 2});
  backward(sum(mul(x, 3.f)));
  backward(sum(mul(x, 3.f)));
  REQUIRE(x.grad().to_vector() == std::vector<float>{6, 6});
  x.zero_grad();
  backward(sum(mul(x, 3.f)));
  REQUIRE(x.grad().to_vector() == std::vector<float>{3, 3});
}

TEST_CASE("tape: inputs that need no gradient get none", "[tape]") {
  Tensor x = leaf({1, 2});
  Tensor c = Tensor::from_vector({5, 7}, {2});  // a constant
  backward(sum(mul(x, c)));
  REQUIRE(x.grad().to_vector() == std::vector<float>{5, 7});
  REQUIRE_FALSE(c.grad().defined());
  REQUIRE_FALSE(c.requires_grad());
}

TEST_CASE("tape: no-grad scope records nothing", "[tape]") {
  Tensor x = leaf({1, 2});
  reset_tape();
  {
    NoGradGuard no_grad;
    REQUIRE_FALSE(grad_enabled());
    Tensor y = mul(x, x);
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(tape_size() == 0);
    REQUIRE_THROWS_WITH(backward(sum(y)), Catch::Contains("does not require grad"));
  }
  REQUIRE(grad_enabled());
}

TEST_CASE("tape: detach stops the gradient", "[tape]") {
  Tensor x = leaf({1, 2, 3});
  Tensor d = detach(x);
  REQUIRE_FALSE(d.requires_grad());
  REQUIRE(d.data() == x.data());  // shares storage
  backward(sum(mul(d, x)));     // d is a constant: gradient x, not 2x
  REQUIRE(x.grad().to_vector() == std::vector<float>{1, 2, 3});
}

TEST_CASE("tape: a second backward on a released tape is a clear error", "[tape]") {
  Tensor x = leaf({1, 2});
  Tensor loss = sum(mul(x, x));
  backward(loss);
  REQUIRE_THROWS_WITH(backward(loss), Catch::Contains("already released"));
  Tensor loss2 = sum(mul(x, x));
  reset_tape();
  REQUIRE_THROWS_WITH(backward(loss2), Catch::Contains("already released"));
}

TEST_CASE("tape: misuse gives errors that say what to do", "[tape]") {
  Tensor x = leaf({1, 2});
  Tensor y = mul(x, x);
  REQUIRE_THROWS_WITH(backward(y), Catch::Contains("one element") && Catch::Contains("(2)"));
  REQUIRE_THROWS_WITH(y.set_requires_grad(), Catch::Contains("only leaves"));
  REQUIRE_THROWS_WITH(backward(y, Tensor::ones({3})), Catch::Contains("(2)") && Catch::Contains("(3)"));
  backward(y, Tensor::ones({2}));  // an explicit seed works
  REQUIRE(x.grad().to_vector() == std::vector<float>{2, 4});
}

TEST_CASE("tape: dump lists entries in execution order", "[tape]") {
  reset_tape();
  Tensor x = leaf({1, 2, 3});
  Tensor loss = sum(exp(mul(x, x)));
  std::string d = tape_dump();
  REQUIRE(d.find("0: mul") != std::string::npos);
  REQUIRE(d.find("1: exp") != std::string::npos);
  REQUIRE(d.find("2: sum") != std::string::npos);
  reset_tape();
}
