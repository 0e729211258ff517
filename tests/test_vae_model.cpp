// test_vae_model.cpp: the VAE model (models/vae.h) — pytorch/examples' parameter names, config
// JSON, loss and gradients against PyTorch (tests/fixtures/make_vae_fixtures.py), training from a
// fixed seed (loss goes down, bit-identical reruns), evaluate() (ELBO bookkeeping, the
// importance-weighted bound, active units), the conditional and conv variants, and CPU vs CUDA.
#include <catch2/catch.hpp>

#include "tests/synthetic.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "autograd/ops.h"
#include "models/optim.h"
#include "models/vae.h"
#include "tests/fixtures.h"
#include "tests/op_table.h"

using namespace gt;

namespace {

// float32 forward vs torch's float64 on the 12-7-3 fixtures: sums of <= 15 products of O(1) terms,
// losses O(10): a few float32 ulps relative.
constexpr double kFixtureLossAtol = 1e-5, kFixtureLossRtol = 1e-5;
// Gradients: one backward through five layers in float32; elements O(1e-3..1), so an absolute
// floor of a few ulps of the largest ones plus a relative bound.
constexpr double kFixtureGradAtol = 2e-6, kFixtureGradRtol = 1e-4;
// loss() vs the same composition with eps drawn by gen.randn: the same Philox stream, computed by
// philox.h inside the kernel vs by Generator (cuRAND's host generator in CUDA builds): normals
// agree to ~1 ulp, so results agree to float32 rounding.
constexpr double kSameEpsAtol = 1e-5, kSameEpsRtol = 1e-5;
// CPU vs CUDA: cuBLAS vs Eigen summation order and fast intrinsics, through a few layers.
constexpr double kDevAtol = 1e-4, kDevRtol = 1e-3;

std::string fixture_key(std::string name) {
  for (char& c : name)
    if (c == '.') c = '_';
  return name;
}

VaeConfig config_from_fixture(const test::Fixture& f) {
  VaeConfig c;
  c.height = f.attr_int("height");
  c.width = f.attr_int("width");
  c.hidden.clear();
  std::string h = f.attr("hidden");
  for (size_t p = 0; p != std::string::npos;) {
    size_t q = h.find(',', p);
    c.hidden.push_back(std::stoll(h.substr(p, q == std::string::npos ? q : q - p)));
    p = q == std::string::npos ? q : q + 1;
  }
  c.latent = f.attr_int("latent");
  c.num_classes = f.attr_int("num_classes");
  c.decoder = f.attr("decoder");
  c.learn_variance = f.attr_int("learn_variance") != 0;
  c.decoder_logvar = std::stof(f.attr("decoder_logvar"));
  c.beta = std::stof(f.attr("beta"));
  return c;
}

Tensor fixture_labels(const test::Fixture& f, Device dev) {
  if (!f.has("labels")) return Tensor();
  std::vector<int32_t> y;
  for (double v : f.values("labels")) y.push_back((int32_t)v);
  return Tensor::from_indices(y, {(int64_t)y.size()}, dev);
}

// The loss of vae.h with a given eps instead of the generator's: what loss() computes (checked by
// "loss() is the composition ..." below), with z = mu + exp(logvar / 2) eps written with plain ops.
VaeLoss loss_with_eps(const Vae& vae, const Tensor& x, const Tensor& labels, const Tensor& eps) {
  auto [mu, logvar] = vae.encode(x, labels);
  Tensor z = mu + exp(logvar * 0.5f) * eps;
  Tensor recon = vae.decoder_nll(vae.decode(z, labels), x);
  Tensor kl = kl_normal(mu, logvar);
  return {mean(recon + kl * vae.config().beta), recon, kl};
}

double max_abs_err(const std::vector<float>& got, const std::vector<double>& want) {
  double m = 0;
  for (size_t i = 0; i < got.size(); ++i) m = std::max(m, std::fabs((double)got[i] - want[i]));
  return m;
}

void check_fixture(const std::string& name, Device dev) {
  test::Fixture f = test::load_fixture(name);
  VaeConfig cfg = config_from_fixture(f);
  Generator init(0);
  Vae vae(cfg, init);
  std::map<std::string, Tensor> state;
  for (auto& [n, t] : vae.named_parameters()) state[n] = f.tensor(fixture_key(n));
  vae.load_state_dict(state);  // strict: the fixture holds exactly the model's parameters
  vae.to(dev);
  Tensor x = f.tensor("x", dev), eps = f.tensor("eps", dev), labels = fixture_labels(f, dev);
  VaeLoss l = loss_with_eps(vae, x, labels, eps);
  backward(l.loss);
  test::require_close(name + " recon", l.recon.to_vector(), f.values("recon"), kFixtureLossAtol, kFixtureLossRtol);
  test::require_close(name + " kl", l.kl.to_vector(), f.values("kl"), kFixtureLossAtol, kFixtureLossRtol);
  test::require_close(name + " loss", l.loss.to_vector(), f.values("loss"), kFixtureLossAtol, kFixtureLossRtol);
  double worst_grad = 0;
  for (auto& [n, t] : vae.named_parameters()) {
    REQUIRE(t.grad().defined());
    const auto& want = f.values("grad_" + fixture_key(n));
    test::require_close(name + " grad " + n, t.grad().to_vector(), want, kFixtureGradAtol, kFixtureGradRtol);
    worst_grad = std::max(worst_grad, max_abs_err(t.grad().to_vector(), want));
  }
  if (std::getenv("GENTAPE_TEST_VERBOSE"))
    std::printf("%s (%s): |loss err| %.3g, max |grad err| %.3g\n", name.c_str(), dev == Device::CPU ? "cpu" : "cuda",
                max_abs_err(l.loss.to_vector(), f.values("loss")), worst_grad);
}

const char* kFixtures[] = {"vae_bernoulli", "vae_gaussian_fixed", "vae_gaussian_learned", "vae_conditional",
                           "vae_deep"};

using test::synthetic;  // tests/synthetic.h

// Trains `steps` Adam steps over shuffled minibatches; returns every step's loss.
std::vector<float> train(Vae& vae, const Dataset& data, int steps, int64_t batch, float lr, uint64_t seed,
                         Device dev = Device::CPU) {
  optim::AdamOptions o;
  o.lr = lr;
  optim::Adam opt(vae.named_parameters(), o);
  Generator noise(seed);
  Batcher batches(data, batch, seed, dev, /*shuffle=*/true, /*drop_last=*/true);
  std::vector<float> losses;
  for (int64_t epoch = 0; (int)losses.size() < steps; ++epoch)
    for (batches.start_epoch(epoch); (int)losses.size() < steps && batches.next();) {
      Tensor labels = vae.config().conditional() ? batches.y() : Tensor();
      VaeLoss l = vae.loss(batches.x(), labels, noise);
      backward(l.loss);
      opt.step();
      opt.zero_grad();
      losses.push_back(l.loss.item());
    }
  return losses;
}

double mean_of(const std::vector<float>& v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += v[i];
  return s / (double)(to - from);
}

}  // namespace

TEST_CASE("vae: default config has pytorch/examples' parameter names and shapes", "[vae][model]") {
  Generator init(1);
  Vae vae(VaeConfig{}, init);
  auto np = vae.named_parameters();
  const std::vector<std::pair<std::string, Shape>> want = {
      {"fc1.weight", {400, 784}}, {"fc1.bias", {400}},  {"fc21.weight", {20, 400}}, {"fc21.bias", {20}},
      {"fc22.weight", {20, 400}}, {"fc22.bias", {20}},  {"fc3.weight", {400, 20}},  {"fc3.bias", {400}},
      {"fc4.weight", {784, 400}}, {"fc4.bias", {784}}};
  REQUIRE(np.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(np[i].first == want[i].first);
    CHECK(np[i].second.shape() == want[i].second);
    CHECK(np[i].second.requires_grad());
  }
  // 784*400+400 + 2*(400*20+20) + 20*400+400 + 400*784+784
  REQUIRE(vae.num_parameters() == 652824);
}

TEST_CASE("vae: names of the deeper MLP, conv, conditional and learned-variance variants", "[vae][model]") {
  auto names = [](const Vae& v) {
    std::vector<std::string> out;
    for (auto& p : v.named_parameters()) out.push_back(p.first + p.second.shape().str());
    return out;
  };
  Generator init(1);
  SECTION("deep MLP 784-256-64-16") {
    VaeConfig c;
    c.hidden = {256, 64};
    c.latent = 16;
    Vae v(c, init);
    REQUIRE(names(v) == std::vector<std::string>{
                            "enc1.weight(256, 784)", "enc1.bias(256)", "enc2.weight(64, 256)", "enc2.bias(64)",
                            "fc_mu.weight(16, 64)", "fc_mu.bias(16)", "fc_logvar.weight(16, 64)", "fc_logvar.bias(16)",
                            "dec1.weight(64, 16)", "dec1.bias(64)", "dec2.weight(256, 64)", "dec2.bias(256)",
                            "dec_out.weight(784, 256)", "dec_out.bias(784)"});
  }
  SECTION("conv 28x28") {
    VaeConfig c;
    c.arch = "conv";
    c.hidden = {128};
    Vae v(c, init);
    REQUIRE(names(v) == std::vector<std::string>{
                            "conv1.weight(32, 1, 4, 4)", "conv1.bias(32)", "conv2.weight(64, 32, 4, 4)", "conv2.bias(64)",
                            "fc1.weight(128, 3136)", "fc1.bias(128)", "fc_mu.weight(20, 128)", "fc_mu.bias(20)",
                            "fc_logvar.weight(20, 128)", "fc_logvar.bias(20)", "fc3.weight(128, 20)", "fc3.bias(128)",
                            "fc4.weight(3136, 128)", "fc4.bias(3136)", "deconv1.weight(64, 32, 4, 4)", "deconv1.bias(32)",
                            "deconv2.weight(32, 1, 4, 4)", "deconv2.bias(1)"});
  }
  SECTION("conditional: the one-hot label widens fc1 and fc3") {
    VaeConfig c;
    c.num_classes = 10;
    Vae v(c, init);
    auto sd = v.state_dict();
    REQUIRE(sd.at("fc1.weight").shape() == Shape{400, 794});
    REQUIRE(sd.at("fc3.weight").shape() == Shape{400, 30});
    REQUIRE(sd.at("fc4.weight").shape() == Shape{784, 400});
  }
  SECTION("gaussian with learned variance: dec_logvar (D) at decoder_logvar") {
    VaeConfig c;
    c.decoder = "gaussian";
    c.learn_variance = true;
    c.decoder_logvar = -2.f;
    Vae v(c, init);
    auto sd = v.state_dict();
    REQUIRE(sd.at("dec_logvar").shape() == Shape{784});
    REQUIRE(sd.at("dec_logvar").to_vector() == std::vector<float>(784, -2.f));
    REQUIRE(v.num_parameters() == 652824 + 784);
    c.learn_variance = false;
    Vae fixed(c, init);
    REQUIRE(fixed.state_dict().count("dec_logvar") == 0);
  }
}

TEST_CASE("vae: config JSON round trip and validation errors name the field", "[vae][model]") {
  VaeConfig c;
  c.arch = "conv";
  c.height = 32;
  c.width = 16;
  c.hidden = {123};
  c.latent = 7;
  c.decoder = "gaussian";
  c.learn_variance = true;
  c.decoder_logvar = -1.25f;
  c.beta = 0.3f;
  c.num_classes = 5;
  VaeConfig r = VaeConfig::from_json(c.to_json());
  CHECK(r.arch == c.arch);
  CHECK(r.height == c.height);
  CHECK(r.width == c.width);
  CHECK(r.hidden == c.hidden);
  CHECK(r.latent == c.latent);
  CHECK(r.decoder == c.decoder);
  CHECK(r.learn_variance == c.learn_variance);
  CHECK(r.decoder_logvar == c.decoder_logvar);  // float -> JSON double -> float is exact
  CHECK(r.beta == c.beta);
  CHECK(r.num_classes == c.num_classes);
  CHECK(VaeConfig::from_json(VaeConfig{}.to_json()).to_json() == VaeConfig{}.to_json());
  VaeConfig tenth;
  tenth.beta = 0.1f;
  CHECK(tenth.to_json().find("\"beta\":0.1,") != std::string::npos);  // not 0.10000000149011612
  CHECK(VaeConfig::from_json(tenth.to_json()).beta == 0.1f);
  CHECK(VaeConfig::from_json("{\"latent\": 2}").hidden == std::vector<int64_t>{400});  // missing keys: defaults

  REQUIRE_THROWS_WITH(VaeConfig::from_json("{\"latnet\": 2}"), Catch::Contains("unknown key 'latnet'"));
  REQUIRE_THROWS_WITH(VaeConfig::from_json("{\"latent\": 2.5}"), Catch::Contains("latent") && Catch::Contains("2.5"));
  REQUIRE_THROWS_WITH(VaeConfig::from_json("{\"hidden\": [400, \"x\"]}"), Catch::Contains("hidden"));
  REQUIRE_THROWS_WITH(VaeConfig::from_json("{\"latent\": 0}"), Catch::Contains("latent") && Catch::Contains("0"));
  REQUIRE_THROWS_WITH(VaeConfig::from_json("[1, 2]"), Catch::Contains("object"));
  REQUIRE_THROWS_WITH(VaeConfig::from_json("{oops"), Catch::Contains("not valid JSON"));

  auto bad = [](auto edit) {
    VaeConfig v;
    edit(v);
    return v;
  };
  REQUIRE_THROWS_WITH(bad([](VaeConfig& v) { v.latent = 0; }).validate(), Catch::Contains("latent must be >= 1, got 0"));
  REQUIRE_THROWS_WITH(bad([](VaeConfig& v) { v.hidden = {400, 0}; }).validate(),
                      Catch::Contains("hidden[1]") && Catch::Contains("got 0"));
  REQUIRE_THROWS_WITH(bad([](VaeConfig& v) { v.hidden = {}; }).validate(), Catch::Contains("hidden"));
  REQUIRE_THROWS_WITH(bad([](VaeConfig& v) { v.decoder = "poisson"; }).validate(),
                      Catch::Contains("decoder") && Catch::Contains("'poisson'"));
  REQUIRE_THROWS_WITH(bad([](VaeConfig& v) { v.arch = "resnet"; }).validate(),
                      Catch::Contains("arch") && Catch::Contains("'resnet'"));
  REQUIRE_THROWS_WITH(bad([](VaeConfig& v) { v.arch = "conv"; v.height = 30; }).validate(),
                      Catch::Contains("divisible by 4") && Catch::Contains("height 30"));
  REQUIRE_THROWS_WITH(bad([](VaeConfig& v) { v.arch = "conv"; v.hidden = {64, 32}; }).validate(),
                      Catch::Contains("conv") && Catch::Contains("hidden"));
  REQUIRE_THROWS_WITH(bad([](VaeConfig& v) { v.beta = -0.5f; }).validate(),
                      Catch::Contains("beta") && Catch::Contains("-0.5"));
  REQUIRE_THROWS_WITH(bad([](VaeConfig& v) { v.num_classes = -1; }).validate(),
                      Catch::Contains("num_classes") && Catch::Contains("-1"));
  REQUIRE_THROWS_WITH(bad([](VaeConfig& v) { v.learn_variance = true; }).validate(),
                      Catch::Contains("learn_variance"));
  Generator init(0);
  REQUIRE_THROWS_WITH(Vae(bad([](VaeConfig& v) { v.latent = -3; }), init), Catch::Contains("latent"));
}

TEST_CASE("vae: loss and gradients match PyTorch", "[vae][model][fixtures]") {
  for (const char* name : kFixtures) {
    DYNAMIC_SECTION(name) { check_fixture(name, Device::CPU); }
  }
}

TEST_CASE("vae: loss() is the fixture-checked composition with the generator's eps", "[vae][model]") {
  // loss() draws eps inside reparameterize; the same generator state gives the same eps through
  // gen.randn, so loss() must equal loss_with_eps (checked against PyTorch above) on that eps.
  for (const char* name : {"vae_bernoulli", "vae_gaussian_fixed", "vae_conditional"}) {
    DYNAMIC_SECTION(name) {
      test::Fixture f = test::load_fixture(name);
      Generator init(3);
      Vae vae(config_from_fixture(f), init);
      Tensor x = f.tensor("x"), labels = fixture_labels(f, Device::CPU);
      Generator noise(77);
      noise.set_offset(5);  // an odd offset: reparameterize must round it up exactly as randn does
      VaeLoss a = vae.loss(x, labels, noise);
      const uint64_t after = noise.offset();
      backward(a.loss);
      std::map<std::string, std::vector<float>> ga;
      for (auto& [n, t] : vae.named_parameters()) ga[n] = t.grad().to_vector();
      vae.zero_grad();

      Generator same(77);
      same.set_offset(5);
      Tensor eps = same.randn({x.size(0), vae.config().latent});
      REQUIRE(same.offset() == after);
      VaeLoss b = loss_with_eps(vae, x, labels, eps);
      backward(b.loss);
      test::require_close("loss", a.loss.to_vector(), b.loss.to_vector(), kSameEpsAtol, kSameEpsRtol);
      test::require_close("recon", a.recon.to_vector(), b.recon.to_vector(), kSameEpsAtol, kSameEpsRtol);
      test::require_close("kl", a.kl.to_vector(), b.kl.to_vector(), kSameEpsAtol, kSameEpsRtol);
      for (auto& [n, t] : vae.named_parameters())
        test::require_close("grad " + n, ga[n], t.grad().to_vector(), kSameEpsAtol, kSameEpsRtol);
    }
  }
}

TEST_CASE("vae: bad inputs are named", "[vae][model]") {
  Generator init(0), noise(1);
  VaeConfig c;
  c.height = 3;
  c.width = 4;
  c.hidden = {5};
  c.latent = 2;
  Vae vae(c, init);
  REQUIRE_THROWS_WITH(vae.encode(Tensor::zeros({2, 13}), Tensor()), Catch::Contains("(B, 12)") &&
                                                                         Catch::Contains("(2, 13)"));
  REQUIRE_THROWS_WITH(vae.decode(Tensor::zeros({2, 3}), Tensor()), Catch::Contains("(B, 2)") &&
                                                                        Catch::Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(vae.sample(0, Tensor(), noise), Catch::Contains("n must be >= 1"));
  // An unconditional VAE ignores labels it is given (training loops may pass the batch's y always).
  Tensor x = Tensor::full({2, 12}, 0.5f);
  REQUIRE(vae.reconstruct(x, Tensor::from_indices({0, 1}, {2})).shape() == Shape{2, 12});
}

TEST_CASE("vae: Adam training lowers the loss and reruns are bit-identical", "[vae][model]") {
  Dataset data = synthetic(256, 8, 8, 11);
  VaeConfig c;
  c.height = c.width = 8;
  c.hidden = {32};
  c.latent = 4;
  auto run = [&]() {
    Generator init(5);
    Vae vae(c, init);
    return train(vae, data, 120, 32, 1e-2f, 9);
  };
  std::vector<float> a = run(), b = run();
  REQUIRE(a.size() == 120);
  REQUIRE(a == b);  // same seeds: the same losses, to the bit
  // 64 binary pixels start at ~64 log 2 = 44 nats; 4 prototypes with 5% flips are learnable: the
  // flip noise alone costs 64 * H(0.05) = 12.8 nats, so the trained loss lies far below the start.
  const double first = mean_of(a, 0, 10), last = mean_of(a, a.size() - 10, a.size());
  INFO("step 0 " << a[0] << ", first 10 steps " << first << ", last 10 steps " << last);
  REQUIRE(std::fabs(a[0] - 64 * std::log(2.0)) < 2.0);  // an untrained decoder: logits near 0, KL near 0
  REQUIRE(last < 0.5 * first);
}

TEST_CASE("vae: conditional sample, reconstruct and label errors", "[vae][model]") {
  Generator init(2), noise(3);
  VaeConfig c;
  c.height = 4;
  c.width = 4;
  c.hidden = {8};
  c.latent = 3;
  c.num_classes = 3;
  Vae vae(c, init);
  Tensor labels = Tensor::from_indices({0, 2, 1, 2, 0}, {5});
  Tensor s = vae.sample(5, labels, noise);
  REQUIRE(s.shape() == Shape{5, 16});
  for (float v : s.to_vector()) REQUIRE((v >= 0.f && v <= 1.f));
  REQUIRE(vae.reconstruct(s, labels).shape() == Shape{5, 16});
  REQUIRE(tape_size() == 0);  // sample and reconstruct record nothing
  // The label changes the decoder's output for the same z.
  Tensor z = noise.randn({1, 3});
  Tensor d0 = vae.decode(z, Tensor::from_indices({0}, {1})), d1 = vae.decode(z, Tensor::from_indices({1}, {1}));
  REQUIRE(d0.to_vector() != d1.to_vector());
  reset_tape();

  REQUIRE_THROWS_WITH(vae.sample(2, Tensor::from_indices({1, 3}, {2}), noise),
                      Catch::Contains("label 3") && Catch::Contains("0..2"));
  REQUIRE_THROWS_WITH(vae.loss(s, Tensor::from_indices({0, 1, -1, 0, 0}, {5}), noise), Catch::Contains("label -1"));
  REQUIRE_THROWS_WITH(vae.sample(2, Tensor(), noise), Catch::Contains("labels") && Catch::Contains("conditional"));
  REQUIRE_THROWS_WITH(vae.sample(2, labels, noise), Catch::Contains("(2)"));  // 5 labels for 2 samples
  reset_tape();
}

TEST_CASE("vae: conv variant runs forward and backward and learns", "[vae][model]") {
  Dataset data = synthetic(64, 28, 28, 4);
  VaeConfig c;
  c.arch = "conv";
  c.hidden = {64};
  c.latent = 8;
  Generator init(6);
  Vae vae(c, init);
  Tensor x = data.head(16).images;
  auto [mu, lv] = vae.encode(x, Tensor());
  REQUIRE(mu.shape() == Shape{16, 8});
  REQUIRE(lv.shape() == Shape{16, 8});
  REQUIRE(vae.decode(mu, Tensor()).shape() == Shape{16, 784});
  reset_tape();
  Generator noise(8);
  Tensor s = vae.sample(3, Tensor(), noise);
  REQUIRE(s.shape() == Shape{3, 784});

  auto fixed_loss = [&]() {
    NoGradGuard ng;
    Generator g(100);
    return vae.loss(x, Tensor(), g).loss.item();
  };
  const float before = fixed_loss();
  std::vector<float> losses = train(vae, data, 40, 16, 3e-3f, 21);
  const float after = fixed_loss();
  INFO("loss on a fixed batch and noise: before " << before << ", after 40 Adam steps " << after);
  // 784 binary pixels: an untrained decoder costs ~784 log 2 = 543 nats; the 5% flips alone cost
  // 784 H(0.05) = 156 nats, and 40 steps get well on the way there.
  REQUIRE(before > 500.f);
  REQUIRE(std::isfinite(after));
  REQUIRE(after < 0.6f * before);
}

TEST_CASE("vae: evaluate's bookkeeping, the importance-weighted bound, and K = 1 unbiasedness", "[vae][model]") {
  Dataset data = synthetic(256, 8, 8, 11);
  VaeConfig c;
  c.height = c.width = 8;
  c.hidden = {32};
  c.latent = 4;
  Generator init(5);
  Vae vae(c, init);
  train(vae, data, 300, 32, 1e-2f, 9);

  Generator g(1);
  VaeEval e = evaluate(vae, data, 100, 50, g, Device::CPU);  // batches of 100, 100, 56
  REQUIRE(e.n == 256);
  REQUIRE(e.iw_samples == 50);
  // neg_elbo is defined as recon + kl (both double sums of per-sample floats).
  REQUIRE(e.neg_elbo == Approx(e.recon + e.kl).epsilon(1e-12));
  double kl_dims = 0;
  for (double k : e.kl_per_dim) kl_dims += k;
  REQUIRE(e.kl_per_dim.size() == 4);
  REQUIRE(kl_dims == Approx(e.kl).epsilon(1e-5));  // host double vs the kernel's float row sums
  // log p(x) >= IW bound (K = 50) >= ELBO: the 50-sample bound is tighter. Slack: neg_elbo itself
  // is a one-sample estimate over 256 examples (std error ~0.1 nat here), far below the gap.
  INFO("neg_elbo " << e.neg_elbo << ", nll_iw(50) " << e.nll_iw << ", kl " << e.kl);
  REQUIRE(e.nll_iw <= e.neg_elbo + 0.1);
  REQUIRE(e.nll_iw > 0);

  // K = 1: log w = log p(x|z) + log p(z) - log q(z|x) with one z is an unbiased estimate of the
  // ELBO (the KL estimated by Monte Carlo instead of analytically). Over R independent runs the
  // mean difference to neg_elbo must vanish within a few standard errors.
  const int R = 100;
  std::vector<double> diff;
  for (int r = 0; r < R; ++r) {
    Generator gr(1000 + (uint64_t)r);
    VaeEval e1 = evaluate(vae, data, 128, 1, gr, Device::CPU);
    diff.push_back(e1.nll_iw - e1.neg_elbo);
  }
  double m = 0, v = 0;
  for (double d : diff) m += d / R;
  for (double d : diff) v += (d - m) * (d - m) / (R - 1);
  const double stderr_ = std::sqrt(v / R);
  INFO("K=1: mean(nll_iw - neg_elbo) " << m << ", standard error " << stderr_);
  REQUIRE(std::fabs(m) <= 4 * stderr_ + 1e-4);  // 4 sigma: fails by chance with p < 1e-4
}

TEST_CASE("vae: active units and posterior collapse on a hand-made encoder", "[vae][model]") {
  // D = 4 pixels, hidden 4, latent 3. fc1 = identity, bias 0: h = relu(x) = x. fc22 = 0: logvar = 0.
  // fc21 rows: mu_0 = x_0, mu_1 = 0.05 x_0, mu_2 = 0.3 (ignores x). x_0 alternates 0, 1 over the
  // data: Var(x_0) = 1/4, so activity = (0.25, 0.000625, 0) and one unit is active.
  Dataset d;
  d.name = "hand";
  d.height = 2;
  d.width = 2;
  d.num_classes = 1;
  std::vector<float> img;
  const int64_t N = 10;
  for (int64_t i = 0; i < N; ++i) img.insert(img.end(), {(float)(i % 2), 0.5f, 0.25f, 1.f});
  d.images = Tensor::from_vector(img, {N, 4});
  d.labels = Tensor::from_indices(std::vector<int32_t>((size_t)N, 0), {N});

  VaeConfig c;
  c.height = c.width = 2;
  c.hidden = {4};
  c.latent = 3;
  Generator init(0);
  Vae vae(c, init);
  auto sd = vae.state_dict();
  sd["fc1.weight"].copy_(Tensor::from_vector({1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, {4, 4}));
  sd["fc1.bias"].zero_();
  sd["fc21.weight"].copy_(Tensor::from_vector({1, 0, 0, 0, 0.05f, 0, 0, 0, 0, 0, 0, 0}, {3, 4}));
  sd["fc21.bias"].copy_(Tensor::from_vector({0, 0, 0.3f}, {3}));
  sd["fc22.weight"].zero_();
  sd["fc22.bias"].zero_();

  Generator g(4);
  VaeEval e = evaluate(vae, d, 3, 0, g, Device::CPU);  // odd batches: 3, 3, 3, 1
  REQUIRE(e.n == N);
  REQUIRE(e.activity.size() == 3);
  // Population variance of float values computed in double: exact to ~1e-9.
  CHECK(e.activity[0] == Approx(0.25).margin(1e-9));
  CHECK(e.activity[1] == Approx(0.05 * 0.05 * 0.25).epsilon(1e-6));
  CHECK(e.activity[2] == Approx(0.0).margin(1e-12));
  REQUIRE(e.active_units == 1);
  REQUIRE_FALSE(e.posterior_collapse());  // 1 of 3 active: not below a quarter
  // KL_j with logvar 0 is mu_j^2 / 2: E over the data of (x_0^2/2, 0.0025 x_0^2/2, 0.045).
  CHECK(e.kl_per_dim[0] == Approx(0.25).epsilon(1e-6));
  CHECK(e.kl_per_dim[1] == Approx(0.000625).epsilon(1e-5));
  CHECK(e.kl_per_dim[2] == Approx(0.045).epsilon(1e-5));
  CHECK(e.kl == Approx(0.25 + 0.000625 + 0.045).epsilon(1e-6));
  REQUIRE(e.nll_iw == 0);  // K = 0: not computed

  // mu ignores x entirely: every unit inactive — collapse.
  sd["fc21.weight"].zero_();
  VaeEval c0 = evaluate(vae, d, 4, 0, g, Device::CPU);
  REQUIRE(c0.active_units == 0);
  REQUIRE(c0.posterior_collapse());

  // q(z|x) = p(z) = N(0, I) and a decoder that ignores z: every importance weight is p(x|z) = p(x),
  // so the IW bound equals the reconstruction term exactly (log p(z) - log q(z|x) = 0 per sample)
  // for any K, and the KL is 0.
  sd["fc21.bias"].zero_();
  sd["fc3.weight"].zero_();
  VaeEval p0 = evaluate(vae, d, 4, 7, g, Device::CPU);
  CHECK(p0.kl == 0.0);
  CHECK(p0.nll_iw == Approx(p0.recon).epsilon(1e-6));  // float row sums vs logsumexp of equal terms
}

TEST_CASE("vae: evaluate works on the conditional VAE with the IW bound", "[vae][model]") {
  Dataset data = synthetic(40, 4, 4, 3);
  VaeConfig c;
  c.height = c.width = 4;
  c.hidden = {8};
  c.latent = 2;
  c.num_classes = 4;
  Generator init(1), g(2);
  Vae vae(c, init);
  VaeEval e = evaluate(vae, data, 16, 7, g, Device::CPU);
  REQUIRE(e.n == 40);
  REQUIRE(std::isfinite(e.nll_iw));
  REQUIRE(std::isfinite(e.neg_elbo));
  REQUIRE(tape_size() == 0);  // evaluate records nothing
}

// ---- CUDA -------------------------------------------------------------------------------------

namespace {
// The same weights and noise seed on both devices: loss, per-sample terms and every gradient.
void cpu_vs_cuda(const VaeConfig& c, const Dataset& data, int64_t B) {
  Generator init(12);
  Vae cpu(c, init);
  Generator init2(12);
  Vae gpu(c, init2);
  gpu.to(Device::CUDA);
  Dataset head = data.head(B);
  Tensor x = head.images, y = c.conditional() ? head.labels : Tensor();
  Generator n1(99), n2(99);
  VaeLoss a = cpu.loss(x, y, n1);
  VaeLoss b = gpu.loss(x.to(Device::CUDA), y.defined() ? y.to(Device::CUDA) : y, n2);
  backward(a.loss);
  backward(b.loss);
  test::require_close("loss", b.loss.to_vector(), a.loss.to_vector(), kDevAtol, kDevRtol);
  test::require_close("recon", b.recon.to_vector(), a.recon.to_vector(), kDevAtol, kDevRtol);
  test::require_close("kl", b.kl.to_vector(), a.kl.to_vector(), kDevAtol, kDevRtol);
  auto pc = cpu.named_parameters(), pg = gpu.named_parameters();
  for (size_t i = 0; i < pc.size(); ++i)
    test::require_close("grad " + pc[i].first, pg[i].second.grad().to_vector(), pc[i].second.grad().to_vector(),
                        kDevAtol, kDevRtol);
  // Evaluation (with the IW bound) agrees too.
  Generator e1(5), e2(5);
  VaeEval ec = evaluate(cpu, data, 32, 4, e1, Device::CPU), eg = evaluate(gpu, data, 32, 4, e2, Device::CUDA);
  CHECK(eg.neg_elbo == Approx(ec.neg_elbo).epsilon(kDevRtol));
  CHECK(eg.nll_iw == Approx(ec.nll_iw).epsilon(kDevRtol));
  std::vector<float> act_gpu(eg.activity.begin(), eg.activity.end());
  test::require_close("activity", act_gpu, ec.activity, kDevAtol, kDevRtol);
}
}  // namespace

TEST_CASE("vae: CPU and CUDA agree on loss, gradients and evaluation", "[vae][model][cuda]") {
  if (!test::cuda_or_skip()) return;
  Dataset small = synthetic(64, 8, 8, 1);
  VaeConfig c;
  c.height = c.width = 8;
  c.hidden = {32};
  c.latent = 4;
  SECTION("bernoulli") { cpu_vs_cuda(c, small, 16); }
  SECTION("gaussian, learned variance") {
    c.decoder = "gaussian";
    c.learn_variance = true;
    c.decoder_logvar = -1.f;
    cpu_vs_cuda(c, small, 16);
  }
  SECTION("gaussian, fixed variance, beta 0.5") {
    c.decoder = "gaussian";
    c.decoder_logvar = -2.f;
    c.beta = 0.5f;
    cpu_vs_cuda(c, small, 16);
  }
  SECTION("conditional, deep") {
    c.num_classes = 4;
    c.hidden = {32, 16};
    cpu_vs_cuda(c, small, 16);
  }
  SECTION("conv 28x28") {
    VaeConfig cc;
    cc.arch = "conv";
    cc.hidden = {64};
    cc.latent = 8;
    cpu_vs_cuda(cc, synthetic(32, 28, 28, 2), 8);
  }
}

TEST_CASE("vae: PyTorch fixtures on CUDA", "[vae][model][fixtures][cuda]") {
  if (!test::cuda_or_skip()) return;
  for (const char* name : kFixtures) {
    DYNAMIC_SECTION(name) { check_fixture(name, Device::CUDA); }
  }
}

TEST_CASE("vae: training on CUDA follows the CPU run", "[vae][model][cuda]") {
  if (!test::cuda_or_skip()) return;
  Dataset data = synthetic(128, 8, 8, 11);
  VaeConfig c;
  c.height = c.width = 8;
  c.hidden = {32};
  c.latent = 4;
  Generator i1(5), i2(5);
  Vae a(c, i1), b(c, i2);
  b.to(Device::CUDA);
  std::vector<float> la = train(a, data, 20, 32, 1e-2f, 9), lb = train(b, data, 20, 32, 1e-2f, 9, Device::CUDA);
  // Same batches and noise; the trajectories drift apart only by accumulated rounding.
  test::require_close("losses", lb, la, 1e-3, 1e-3);
}
