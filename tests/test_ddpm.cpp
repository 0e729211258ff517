// test_ddpm.cpp: the DDPM model (models/ddpm.h): config round trip, a few training steps with a
// falling loss, the samplers' bookkeeping (steps visited, determinism, option errors).
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "models/ddpm.h"
#include "models/optim.h"

using namespace gt;

namespace {

DdpmConfig tiny_config(int num_classes = 0) {
  DdpmConfig c;
  c.unet.channels = 8;
  c.unet.groups = 4;
  c.unet.num_classes = num_classes;
  c.schedule.T = 50;
  c.height = c.width = 8;
  return c;
}

// 16 images 8x8 in [-1, 1]: a bright square at one of four positions (class = position).
std::pair<Tensor, Tensor> squares() {
  std::vector<float> x(16 * 64, -1.f);
  std::vector<int32_t> y(16);
  for (int i = 0; i < 16; ++i) {
    const int k = i % 4, r0 = (k / 2) * 4, c0 = (k % 2) * 4;
    y[i] = k;
    for (int r = r0; r < r0 + 4; ++r)
      for (int c = c0; c < c0 + 4; ++c) x[i * 64 + r * 8 + c] = 1.f;
  }
  return {Tensor::from_vector(x, {16, 1, 8, 8}), Tensor::from_indices(y, {16})};
}

}  // namespace

TEST_CASE("ddpm: config JSON round trip and validation", "[ddpm]") {
  DdpmConfig c = tiny_config(10);
  c.schedule.schedule = "cosine";
  c.label_dropout = 0.2f;
  DdpmConfig r = DdpmConfig::from_json(c.to_json());
  CHECK(r.to_json() == c.to_json());
  CHECK(r.unet.num_classes == 10);
  CHECK(r.schedule.schedule == "cosine");
  CHECK_THROWS_WITH(DdpmConfig::from_json("{\"heigth\": 28}"), Catch::Contains("unknown key 'heigth'"));
  CHECK_THROWS_WITH(DdpmConfig::from_json("{\"height\": 27}"), Catch::Contains("must be even"));
  CHECK_THROWS_WITH(DdpmConfig::from_json("{\"label_dropout\": 1.5}"), Catch::Contains("label_dropout"));
}

TEST_CASE("ddpm: a few training steps lower the eps-prediction loss", "[ddpm]") {
  for (int classes : {0, 4}) {
    DYNAMIC_SECTION((classes ? "conditional" : "unconditional")) {
      Generator init(1), gen(2);
      Ddpm model(tiny_config(classes), init, Device::CPU);
      optim::Adam opt(model.net().named_parameters(), {.lr = 3e-3f});
      auto [x, y] = squares();
      std::vector<double> losses;
      for (int step = 0; step < 60; ++step) {
        DdpmLoss l = model.loss(x, classes ? &y : nullptr, gen);
        REQUIRE(std::isfinite(l.loss.item()));
        REQUIRE(l.t.size() == 16);
        for (int32_t t : l.t) REQUIRE((t >= 1 && t <= 50));
        losses.push_back(l.loss.item());
        backward(l.loss);
        opt.step();
        opt.zero_grad();
      }
      double first = 0, last = 0;
      for (int i = 0; i < 10; ++i) first += losses[i] / 10, last += losses[50 + i] / 10;
      INFO("mean loss, first 10 steps " << first << ", last 10 " << last);
      CHECK(first > 0.7);          // an untrained network predicts eps poorly (E||eps||^2/D = 1)
      CHECK(last < 0.75 * first);  // and learns
    }
  }
}

TEST_CASE("ddpm: loss input errors name the problem", "[ddpm]") {
  Generator init(1), gen(2);
  Ddpm model(tiny_config(), init, Device::CPU);
  auto [x, y] = squares();
  CHECK_THROWS_WITH(model.loss(Tensor::zeros({2, 1, 6, 6}), nullptr, gen), Catch::Contains("expected (B, 1, 8, 8)"));
  CHECK_THROWS_WITH(model.loss(x, &y, gen), Catch::Contains("unconditional"));
  Ddpm cond(tiny_config(4), init, Device::CPU);
  CHECK_THROWS_WITH(cond.loss(x, nullptr, gen), Catch::Contains("needs labels"));
  Tensor bad = Tensor::from_indices(std::vector<int32_t>(16, 7), {16});
  CHECK_THROWS_WITH(cond.loss(x, &bad, gen), Catch::Contains("label 7"));
}

TEST_CASE("ddpm: samplers visit the right timesteps and are deterministic for a seed", "[ddpm]") {
  Generator init(1);
  Ddpm model(tiny_config(), init, Device::CPU);
  SampleOptions o;
  o.n = 3;
  std::vector<int64_t> seen;
  auto record = [&](int64_t t, const Tensor& xt, const Tensor& x0, int64_t) {
    seen.push_back(t);
    REQUIRE(xt.shape() == Shape{3, 1, 8, 8});
    REQUIRE(x0.shape() == Shape{3, 1, 8, 8});
  };
  Generator g1(5), g2(5);
  Tensor a = ddpm_sample(model.net(), model.schedule(), 8, 8, o, g1, record);
  CHECK(a.shape() == Shape{3, 1, 8, 8});
  REQUIRE(seen.size() == 50);  // ancestral: T steps, t = 49 .. 0 reached
  CHECK(seen.front() == 49);
  CHECK(seen.back() == 0);
  Tensor b = ddpm_sample(model.net(), model.schedule(), 8, 8, o, g2);
  CHECK(a.to_vector() == b.to_vector());
  for (float v : a.to_vector()) REQUIRE(std::isfinite(v));

  seen.clear();
  o.sampler = "ddim";
  o.steps = 10;
  o.batch = 2;  // two batches: the observer runs once per step per batch
  Tensor d = ddpm_sample(model.net(), model.schedule(), 8, 8, o, g1, [&](int64_t t, const Tensor&, const Tensor&, int64_t first) {
    if (first == 0) seen.push_back(t);
  });
  CHECK(d.shape() == Shape{3, 1, 8, 8});
  REQUIRE(seen.size() == 10);
  CHECK(seen.back() == 0);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] < seen[i - 1]);

  o.sampler = "ddpm";
  CHECK_THROWS_WITH(ddpm_sample(model.net(), model.schedule(), 8, 8, o, g1), Catch::Contains("use --sampler ddim"));
  o.steps = 0;
  o.label = 1;
  CHECK_THROWS_WITH(ddpm_sample(model.net(), model.schedule(), 8, 8, o, g1), Catch::Contains("unconditional"));
}

TEST_CASE("ddpm: classifier-free guidance combines the conditional and unconditional predictions", "[ddpm]") {
  Generator init(1);
  Ddpm model(tiny_config(4), init, Device::CPU);
  SampleOptions o;
  o.n = 2;
  o.sampler = "ddim";
  o.steps = 1;  // one step from t = T to 0: the output is x̂₀ of a single prediction
  o.label = 2;
  // With one DDIM step x̂₀ = (x_T − √β̄_T ε̂)/√ᾱ_T is affine in ε̂, so
  // out(w) = (1 + w) out(cond) − w out(uncond) for the same x_T.
  Generator g_c(9), g_u(9), g_w(9);
  Tensor cond = ddpm_sample(model.net(), model.schedule(), 8, 8, o, g_c);
  SampleOptions ou = o;
  ou.label = -1;
  Tensor uncond = ddpm_sample(model.net(), model.schedule(), 8, 8, ou, g_u);
  o.guidance = 2.f;
  Tensor guided = ddpm_sample(model.net(), model.schedule(), 8, 8, o, g_w);
  std::vector<float> c = cond.to_vector(), u = uncond.to_vector(), w = guided.to_vector();
  for (size_t i = 0; i < c.size(); ++i) CHECK(w[i] == Approx(3 * c[i] - 2 * u[i]).margin(2e-3 * (1 + std::fabs(w[i]))));
}
