// test_unet.cpp: the DDPM U-Net (models/unet.h) — the benchmark architecture's 759,937 parameters
// under benchmarks/reference/ddpm_torch.py's state_dict keys (tests/fixtures/unet_keys.txt), the
// forward pass and parameter gradients of a small U-Net against PyTorch in float64
// (tests/fixtures/make_unet_fixtures.py: with attention and labels, and without), shapes and shape
// errors, the config JSON, a few Adam steps that reduce an MSE loss, and CPU vs CUDA.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "autograd/ops.h"
#include "models/optim.h"
#include "models/unet.h"
#include "tests/fixtures.h"
#include "tests/op_table.h"

using namespace gt;

namespace {

// float32 vs torch's float64 through ~35 layers (the small fixture): torch itself in float32 lands
// within 1.3e-6 of the float64 values relative to each tensor's largest element (measured when the
// fixture was made), so the absolute floor is 1e-5 of the largest |value| of the tensor compared
// (near-zero elements carry that absolute error), plus 1e-4 relative.
constexpr double kFixtureAtolOfMax = 1e-5, kFixtureRtol = 1e-4;
// CPU vs CUDA: cuBLAS/cuDNN-free kernels but different summation orders, through the whole net.
constexpr double kDevAtolOfMax = 1e-4, kDevRtol = 1e-3;

std::string fixture_key(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

void require_close_scaled(const std::string& what, const std::vector<float>& got, const std::vector<double>& want,
                          double atol_of_max, double rtol) {
  test::require_close(what, got, want, atol_of_max * max_abs(want), rtol);
}

UNetConfig small_config(const test::Fixture& f, bool full) {
  UNetConfig c;
  c.channels = f.attr_int("channels");
  c.groups = f.attr_int("groups");
  c.attention = full && f.attr_int("attention") != 0;
  c.num_classes = full ? f.attr_int("num_classes") : 0;
  return c;
}

// Loads the fixture's weights by name (strict: every parameter of the model, nothing else it has).
void load_fixture_weights(UNet& unet, const test::Fixture& f) {
  std::map<std::string, Tensor> state;
  for (auto& [n, t] : unet.named_parameters()) state[n] = f.tensor(fixture_key(n));
  unet.load_state_dict(state);
}

Tensor fixture_labels(const test::Fixture& f, Device dev) {
  std::vector<int32_t> y;
  for (double v : f.values("labels")) y.push_back((int32_t)v);
  return Tensor::from_indices(y, {(int64_t)y.size()}, dev);
}

void check_small_fixture(bool full) {
  test::Fixture f = test::load_fixture("unet_small");
  const std::string pre = full ? "full_" : "plain_";
  Generator init(0);
  UNet unet(small_config(f, full), init);
  load_fixture_weights(unet, f);
  Tensor x = f.tensor("x"), t = f.tensor("t"), target = f.tensor("target"), labels = fixture_labels(f, Device::CPU);
  Tensor out = unet.forward(x, t, full ? &labels : nullptr);
  Tensor loss = mean(square(out - target));
  backward(loss);
  require_close_scaled(pre + "out", out.to_vector(), f.values(pre + "out"), kFixtureAtolOfMax, kFixtureRtol);
  test::require_close(pre + "loss", loss.to_vector(), f.values(pre + "loss"), 0, kFixtureRtol);
  int compared = 0;
  for (auto& [n, p] : unet.named_parameters()) {
    const std::string key = pre + "grad_" + fixture_key(n);
    if (!f.has(key)) continue;
    REQUIRE(p.grad().defined());
    require_close_scaled(key, p.grad().to_vector(), f.values(key), kFixtureAtolOfMax, kFixtureRtol);
    ++compared;
  }
  REQUIRE(compared == (full ? 15 : 11));  // every gradient the fixture stores was compared
  if (std::getenv("GENTAPE_TEST_VERBOSE"))
    std::printf("unet_small %s: loss %.9g (torch %.9g)\n", pre.c_str(), loss.item(), f.values(pre + "loss")[0]);
}

// A fixed tiny denoising batch: x_t, t, and the target noise, from one seed.
struct TinyBatch {
  Tensor x, t, eps;
};
TinyBatch tiny_batch(int64_t B, int64_t H, uint64_t seed) {
  Generator g(seed);
  TinyBatch b;
  b.x = g.randn({B, 1, H, H});
  b.eps = g.randn({B, 1, H, H});
  std::vector<float> tv;
  for (int64_t i = 0; i < B; ++i) tv.push_back((float)(1 + (i * 397) % 1000));
  b.t = Tensor::from_vector(tv, {B});
  return b;
}

}  // namespace

TEST_CASE("unet: the default config is the benchmark's 759,937 parameters under ddpm_torch.py's keys",
          "[unet][model]") {
  test::Fixture f = test::load_fixture("unet_keys");
  Generator init(1);
  UNet unet(UNetConfig{}, init);
  auto np = unet.named_parameters();
  REQUIRE(np.size() == f.attrs.size());
  size_t i = 0;
  for (const auto& [attr, value] : f.attrs) {  // @p000, @p001, ...: std::map keeps them in order
    INFO(attr << " = " << value);
    const size_t sp = value.find(' ');
    REQUIRE(sp != std::string::npos);
    CHECK(np[i].first == value.substr(0, sp));
    std::string shape = value.substr(sp + 1), got;
    for (int d = 0; d < np[i].second.dim(); ++d) got += (d ? "," : "") + std::to_string(np[i].second.size(d));
    CHECK(got == shape);
    CHECK(np[i].second.requires_grad());
    ++i;
  }
  REQUIRE(unet.num_parameters() == (int64_t)f.values("num_params")[0]);
  REQUIRE(unet.num_parameters() == 759937);
}

TEST_CASE("unet: attention and class-conditional variants add mid_attn and class_embed", "[unet][model]") {
  Generator init(1);
  UNetConfig c;
  c.attention = true;
  UNet attn(c, init);
  auto sd = attn.state_dict();
  // GroupNorm(64) + qkv 1x1 64 -> 192 + proj 1x1 64 -> 64
  CHECK(attn.num_parameters() == 759937 + (2 * 64) + (64 * 192 + 192) + (64 * 64 + 64));
  CHECK(sd.at("mid_attn.qkv.weight").shape() == Shape{192, 64, 1, 1});
  CHECK(sd.at("mid_attn.proj.weight").shape() == Shape{64, 64, 1, 1});
  CHECK(sd.at("mid_attn.norm.weight").shape() == Shape{64});
  c = UNetConfig{};
  c.num_classes = 10;
  UNet cond(c, init);
  CHECK(cond.state_dict().at("class_embed.weight").shape() == Shape{11, 128});  // row 10 = no label
  CHECK(cond.num_parameters() == 759937 + 11 * 128);
  // GroupNorm starts at the identity (PyTorch's init)
  REQUIRE(cond.state_dict().at("norm_out.weight").to_vector() == std::vector<float>(32, 1.f));
  REQUIRE(cond.state_dict().at("norm_out.bias").to_vector() == std::vector<float>(32, 0.f));
}

TEST_CASE("unet: forward and parameter gradients match PyTorch (small U-Net, attention and labels)",
          "[unet][model][fixture]") {
  check_small_fixture(/*full=*/true);
}

TEST_CASE("unet: forward and parameter gradients match PyTorch (small U-Net, plain)", "[unet][model][fixture]") {
  check_small_fixture(/*full=*/false);
}

TEST_CASE("unet: labels = nullptr is the 'no label' row of a conditional model", "[unet][model]") {
  test::Fixture f = test::load_fixture("unet_small");
  Generator init(0);
  UNet unet(small_config(f, true), init);
  load_fixture_weights(unet, f);
  NoGradGuard ng;
  Tensor x = f.tensor("x"), t = f.tensor("t");
  const int K = unet.config().num_classes;
  Tensor none = Tensor::from_indices({K, K}, {2});
  std::vector<float> a = unet.forward(x, t, nullptr).to_vector(), b = unet.forward(x, t, &none).to_vector();
  REQUIRE(a == b);
  Tensor other = Tensor::from_indices({0, 0}, {2});
  REQUIRE(unet.forward(x, t, &other).to_vector() != a);  // the label changes the prediction
}

TEST_CASE("unet: shapes through the net, and shape errors name the bad input", "[unet][model]") {
  Generator init(3), g(4);
  UNetConfig c;
  c.channels = 8;
  c.groups = 4;
  c.in_channels = 2;
  UNet unet(c, init);
  NoGradGuard ng;
  SECTION("28x28 and a non-square 12x6 image keep their shape") {
    for (auto hw : {std::pair<int64_t, int64_t>{28, 28}, {12, 6}}) {
      Tensor x = g.randn({3, 2, hw.first, hw.second});
      Tensor y = unet.forward(x, Tensor::from_vector({1.f, 500.f, 1000.f}, {3}));
      REQUIRE(y.shape() == Shape{3, 2, hw.first, hw.second});
      for (float v : y.to_vector()) REQUIRE(std::isfinite(v));
    }
  }
  SECTION("errors") {
    Tensor t3 = Tensor::from_vector({1.f, 2.f, 3.f}, {3});
    REQUIRE_THROWS_WITH(unet.forward(g.randn({3, 2, 7, 8}), t3), Catch::Contains("(3, 2, 7, 8)") && Catch::Contains("even"));
    REQUIRE_THROWS_WITH(unet.forward(g.randn({3, 1, 8, 8}), t3), Catch::Contains("(3, 1, 8, 8)"));
    REQUIRE_THROWS_WITH(unet.forward(g.randn({3, 2, 8, 8}), Tensor::from_vector({1.f, 2.f}, {2})),
                        Catch::Contains("t must be float32 of shape (3)") && Catch::Contains("(2)"));
    Tensor labels = Tensor::from_indices({0, 1, 2}, {3});
    REQUIRE_THROWS_WITH(unet.forward(g.randn({3, 2, 8, 8}), t3, &labels), Catch::Contains("unconditional"));
    c.num_classes = 5;
    UNet cond(c, init);
    Tensor float_labels = Tensor::from_vector({0.f, 1.f, 2.f}, {3});
    REQUIRE_THROWS_WITH(cond.forward(g.randn({3, 2, 8, 8}), t3, &float_labels), Catch::Contains("labels must be int32"));
  }
}

TEST_CASE("unet: config JSON round trip and validation errors name the field", "[unet][model]") {
  UNetConfig c;
  c.channels = 16;
  c.in_channels = 3;
  c.groups = 4;
  c.attention = true;
  c.num_classes = 10;
  UNetConfig r = UNetConfig::from_json(c.to_json());
  CHECK(r.channels == 16);
  CHECK(r.in_channels == 3);
  CHECK(r.groups == 4);
  CHECK(r.attention);
  CHECK(r.num_classes == 10);
  CHECK(UNetConfig::from_json("{}").to_json() == UNetConfig{}.to_json());
  REQUIRE_THROWS_WITH(UNetConfig::from_json("{\"chanels\": 8}"), Catch::Contains("unknown key 'chanels'"));
  REQUIRE_THROWS_WITH(UNetConfig::from_json("{\"channels\": 12, \"groups\": 8}"),
                      Catch::Contains("groups") && Catch::Contains("12"));
  REQUIRE_THROWS_WITH(UNetConfig::from_json("{\"channels\": 7, \"groups\": 7}"), Catch::Contains("even"));
  REQUIRE_THROWS_WITH(UNetConfig::from_json("{\"num_classes\": -1}"), Catch::Contains("num_classes"));
}

TEST_CASE("unet: a few Adam steps on a tiny batch reduce the noise-prediction MSE", "[unet][model][train]") {
  Generator init(7);
  UNetConfig c;
  c.channels = 8;
  c.groups = 4;
  UNet unet(c, init);
  TinyBatch b = tiny_batch(4, 8, 11);
  optim::AdamOptions o;
  o.lr = 2e-3f;
  optim::Adam opt(unet.named_parameters(), o);
  std::vector<float> losses;
  for (int step = 0; step < 30; ++step) {
    Tensor loss = mean(square(unet.forward(b.x, b.t) - b.eps));
    backward(loss);
    opt.step();
    opt.zero_grad();
    losses.push_back(loss.item());
  }
  INFO("first loss " << losses.front() << ", last " << losses.back());
  for (float l : losses) REQUIRE(std::isfinite(l));
  // The target is N(0, 1) noise that the tiny net must memorise: the loss starts near 1 (the
  // variance of eps, output ~ 0 at init); 48,481 parameters memorise 256 values, so 30 Adam steps
  // take it far down (to ~0.03 from ~1.1 when written; a wrong gradient stalls well above 1/4).
  REQUIRE(losses.front() > 0.8f);
  REQUIRE(losses.back() < 0.25f * losses.front());
}

TEST_CASE("unet: CPU vs CUDA forward and gradients", "[unet][model][cuda]") {
  if (!test::cuda_or_skip()) return;
  test::Fixture f = test::load_fixture("unet_small");
  std::vector<float> out[2], grads[2];
  for (int d = 0; d < 2; ++d) {
    const Device dev = d ? Device::CUDA : Device::CPU;
    Generator init(0);
    UNet unet(small_config(f, true), init);
    load_fixture_weights(unet, f);
    unet.to(dev);
    Tensor labels = fixture_labels(f, dev);
    Tensor y = unet.forward(f.tensor("x", dev), f.tensor("t", dev), &labels);
    backward(mean(square(y - f.tensor("target", dev))));
    out[d] = y.to_vector();
    for (auto& [n, p] : unet.named_parameters()) {
      std::vector<float> g = p.grad().to_vector();
      grads[d].insert(grads[d].end(), g.begin(), g.end());
    }
  }
  std::vector<double> out_cpu(out[0].begin(), out[0].end()), grad_cpu(grads[0].begin(), grads[0].end());
  require_close_scaled("out cuda vs cpu", out[1], out_cpu, kDevAtolOfMax, kDevRtol);
  require_close_scaled("grads cuda vs cpu", grads[1], grad_cpu, kDevAtolOfMax, kDevRtol);
}
