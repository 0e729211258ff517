// test_optim.cpp: SGD / Adam / AdamW trajectories against torch.optim (fixtures from
// tests/fixtures/make_optim_fixtures.py), state round trips, and the layers' PyTorch layouts.
#include <catch2/catch.hpp>

#include <cmath>

#include "models/layers.h"
#include "models/optim.h"
#include "tests/fixtures.h"
#include "tests/op_table.h"

using namespace gt;

namespace {
// Three fused float32 updates vs torch's float64: a few float32 ulps of O(1) values.
constexpr double kOptimAtol = 2e-6, kOptimRtol = 2e-6;

std::unique_ptr<optim::Optimizer> make_opt(const test::Fixture& f, optim::NamedParams params) {
  const std::string kind = f.attr("kind");
  auto num = [&](const char* k, float dflt) { return f.attrs.count(k) ? std::stof(f.attr(k)) : dflt; };
  if (kind == "SGD") {
    optim::SgdOptions o;
    o.lr = num("lr", 0.01f);
    o.momentum = num("momentum", 0.f);
    o.dampening = num("dampening", 0.f);
    o.weight_decay = num("weight_decay", 0.f);
    o.nesterov = f.attrs.count("nesterov") && f.attr("nesterov") == "True";
    return std::make_unique<optim::SGD>(params, o);
  }
  optim::AdamOptions o;
  o.lr = num("lr", 1e-3f);
  o.eps = num("eps", 1e-8f);
  o.weight_decay = num("weight_decay", kind == "AdamW" ? 1e-2f : 0.f);
  o.decoupled = kind == "AdamW";
  if (f.attrs.count("betas")) {
    std::string b = f.attr("betas");
    o.beta1 = std::stof(b.substr(0, b.find(' ')));
    o.beta2 = std::stof(b.substr(b.find(' ') + 1));
  }
  return std::make_unique<optim::Adam>(params, o);
}

void replay(const std::string& name, Device dev) {
  test::Fixture f = test::load_fixture(name);
  Tensor p = f.tensor("p0", dev).set_requires_grad();
  auto opt = make_opt(f, {{"p", p}});
  for (int k = 1; k <= 3; ++k) {
    p.set_grad(f.tensor("g" + std::to_string(k), dev));
    opt->step();
    test::require_close(name + " after step " + std::to_string(k), p.to_vector(), f.values("p" + std::to_string(k)),
                        kOptimAtol, kOptimRtol);
  }
}

const char* kConfigs[] = {"optim_adam", "optim_adam_wd", "optim_adamw", "optim_sgd", "optim_sgd_momentum",
                          "optim_sgd_nesterov"};
}  // namespace

TEST_CASE("optim: trajectories match torch.optim", "[optim][fixtures]") {
  for (const char* c : kConfigs) {
    DYNAMIC_SECTION(c) { replay(c, Device::CPU); }
  }
}

TEST_CASE("optim: trajectories match torch.optim on CUDA", "[optim][fixtures][cuda]") {
  if (!test::cuda_or_skip()) return;
  for (const char* c : kConfigs) {
    DYNAMIC_SECTION(c) { replay(c, Device::CUDA); }
  }
}

TEST_CASE("optim: state round trip continues identically", "[optim]") {
  // Two steps, save state, two more steps  ==  restore state into a fresh optimiser, two steps.
  Generator gen(3);
  Tensor p = gen.randn({4, 3}).set_requires_grad();
  std::vector<Tensor> grads;
  for (int i = 0; i < 4; ++i) grads.push_back(gen.randn({4, 3}));
  optim::Adam a({{"w", p}}, {});
  for (int i = 0; i < 2; ++i) {
    p.set_grad(grads[(size_t)i]);
    a.step();
  }
  auto state = a.state_dict();
  REQUIRE(state.count("exp_avg.w"));
  REQUIRE(state.count("exp_avg_sq.w"));
  Tensor p_saved = p.clone();
  std::map<std::string, Tensor> saved;
  for (auto& [k, t] : state) saved[k] = t.clone();
  for (int i = 2; i < 4; ++i) {
    p.set_grad(grads[(size_t)i]);
    a.step();
  }
  Tensor q = p_saved.clone().set_requires_grad();
  optim::Adam b({{"w", q}}, {});
  b.load_state_dict(saved);
  REQUIRE(b.steps() == 2);
  for (int i = 2; i < 4; ++i) {
    q.set_grad(grads[(size_t)i]);
    b.step();
  }
  REQUIRE(q.to_vector() == p.to_vector());  // bit-identical
  saved["exp_avg.w"] = Tensor::zeros({2, 2});
  REQUIRE_THROWS_WITH(b.load_state_dict(saved), Catch::Contains("exp_avg.w") && Catch::Contains("(2, 2)"));
}

TEST_CASE("optim: the multi-tensor Adam pass equals one pass per tensor, bit for bit", "[optim]") {
  // 70,009 floats in all (above the threading grain, so every tensor is cut between the threads),
  // odd sizes and 1-element tensors; three steps, AdamW.
  const std::vector<int64_t> sizes = {40000, 7, 30001, 1};
  Generator gen(21);
  std::vector<std::vector<float>> p1, g, m1, v1;
  for (int64_t n : sizes) {
    p1.push_back(gen.randn({n}).to_vector());
    g.push_back(gen.randn({n}).to_vector());
    m1.push_back(std::vector<float>(n, 0.f));
    v1.push_back(std::vector<float>(n, 0.f));
  }
  const auto p0 = p1;
  auto p2 = p1, m2 = m1, v2 = v1;
  for (int t = 1; t <= 3; ++t) {
    const AdamHyper h = adam_hyper(1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, true, t);
    std::vector<AdamTensor> batch;
    for (size_t i = 0; i < sizes.size(); ++i) {
      adam_step_cpu(p1[i].data(), g[i].data(), m1[i].data(), v1[i].data(), sizes[i], h);
      batch.push_back({p2[i].data(), g[i].data(), m2[i].data(), v2[i].data(), sizes[i]});
    }
    adam_step_multi_cpu(batch.data(), (int64_t)batch.size(), h);
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    INFO("tensor " << i);
    CHECK(p1[i] == p2[i]);
    CHECK(m1[i] == m2[i]);
    CHECK(v1[i] == v2[i]);
    CHECK(p1[i] != p0[i]);  // the parameters did move
  }
}

TEST_CASE("layers: PyTorch names, shapes and init bounds", "[layers]") {
  Generator g(0);
  struct Net : nn::Module {
    std::shared_ptr<nn::Linear> fc1;
    std::shared_ptr<nn::Conv2d> conv;
    std::shared_ptr<nn::ConvTranspose2d> up;
    explicit Net(Generator& g) {
      fc1 = register_module("fc1", std::make_shared<nn::Linear>(784, 400, g));
      conv = register_module("conv", std::make_shared<nn::Conv2d>(3, 8, 3, g, 1, 1));
      up = register_module("up", std::make_shared<nn::ConvTranspose2d>(8, 4, 4, g, 2, 1));
    }
  } net(g);
  auto np = net.named_parameters();
  REQUIRE(np.size() == 6);
  REQUIRE(np[0].first == "fc1.weight");
  REQUIRE(np[0].second.shape() == Shape{400, 784});
  REQUIRE(np[1].first == "fc1.bias");
  REQUIRE(np[2].first == "conv.weight");
  REQUIRE(np[2].second.shape() == Shape{8, 3, 3, 3});
  REQUIRE(np[4].first == "up.weight");
  REQUIRE(np[4].second.shape() == Shape{8, 4, 4, 4});  // (in, out, kh, kw)
  REQUIRE(net.num_parameters() == 400 * 784 + 400 + 8 * 27 + 8 + 8 * 4 * 16 + 4);
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)): the extremes approach the bound, and the variance is b^2/3.
  std::vector<float> w = net.fc1->weight.to_vector();
  const double b = 1.0 / std::sqrt(784.0);
  double mx = 0, var = 0;
  for (float v : w) {
    mx = std::max(mx, (double)std::fabs(v));
    var += (double)v * v;
  }
  var /= (double)w.size();
  REQUIRE(mx <= b);
  REQUIRE(mx > 0.99 * b);
  REQUIRE(std::fabs(var - b * b / 3) < 0.02 * b * b / 3);
  std::vector<float> uw = net.up->weight.to_vector();
  double umx = 0;
  for (float v : uw) umx = std::max(umx, (double)std::fabs(v));
  REQUIRE(umx <= 1.0 / std::sqrt(4.0 * 16));  // fan_in = out * kh * kw for ConvTranspose2d
  REQUIRE(umx > 0.9 / std::sqrt(4.0 * 16));

  // load_state_dict: validates before copying; names what is wrong.
  auto sd = net.state_dict();
  std::map<std::string, Tensor> bad = {{"fc1.weight", Tensor::zeros({2, 2})}};
  REQUIRE_THROWS_WITH(net.load_state_dict(bad), Catch::Contains("fc1.weight") && Catch::Contains("(2, 2)"));
  std::map<std::string, Tensor> partial = {{"fc1.bias", Tensor::zeros({400})}};
  REQUIRE_THROWS_WITH(net.load_state_dict(partial), Catch::Contains("missing keys") && Catch::Contains("conv.weight"));
  REQUIRE(net.fc1->bias.to_vector() != std::vector<float>(400, 0.f));  // unchanged by the failed load
  net.load_state_dict(partial, /*strict=*/false);
  REQUIRE(net.fc1->bias.to_vector() == std::vector<float>(400, 0.f));
}

namespace {
// Three EMA updates of a parameter that changes between them, against the recursion in double.
void check_ema(Device device) {
  Generator gen(11);
  Tensor p = gen.randn({5, 7}).to(device).set_requires_grad();
  std::vector<float> host = p.to(Device::CPU).to_vector();
  std::vector<double> ref(host.begin(), host.end());
  optim::Ema ema({{"w", p}}, 0.9f);
  for (int step = 1; step <= 3; ++step) {
    Tensor np = gen.randn({5, 7});  // the "optimiser step": a new parameter value
    p.copy_(np.to(device));
    std::vector<float> pv = np.to_vector();
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = 0.9 * ref[i] + 0.1 * pv[i];
    ema.update();
  }
  std::vector<float> got = ema.state_dict().at("w").to(Device::CPU).to_vector();
  for (size_t i = 0; i < ref.size(); ++i) CHECK(got[i] == Approx(ref[i]).margin(1e-6));
  // The average is a separate buffer: the parameter still holds its last value.
  CHECK(p.to(Device::CPU).to_vector() != got);
}
}  // namespace

TEST_CASE("optim: EMA of weights follows e <- decay e + (1 - decay) p", "[optim]") {
  check_ema(Device::CPU);
  Tensor w = Tensor::zeros({2, 2}).set_requires_grad();
  optim::Ema ema({{"w", w}}, 0.5f);
  CHECK_THROWS_WITH(ema.load_state_dict({{"w", Tensor::zeros({3})}}), Catch::Contains("'w' has shape"));
  CHECK_THROWS_WITH(ema.load_state_dict({}), Catch::Contains("missing 'w'"));
  CHECK_THROWS_WITH(optim::Ema({{"w", w}}, 1.f), Catch::Contains("decay must be in [0, 1)"));
}

TEST_CASE("optim: EMA on CUDA", "[optim][cuda]") {
  if (!test::cuda_or_skip()) return;
  check_ema(Device::CUDA);
}
