// test_ae_model.cpp: the autoencoders (models/ae.h) — parameter names and shapes of the issue's
// 784-512-256-2 benchmark model and the conv variant, config JSON and validation, the noise specs
// and corrupt()'s statistics, the loss against host-computed references (the denoising target is
// the clean x), the sparse term's gradient lambda sign(z) / B, and Adam training of every kind from
// a fixed seed (the loss goes down, reruns are bit-identical).
#include <catch2/catch.hpp>

#include "tests/synthetic.h"

#include <cmath>
#include <map>

#include "autograd/ops.h"
#include "models/ae.h"
#include "models/data.h"
#include "models/optim.h"
#include "tests/op_table.h"

using namespace gt;

namespace {

// float32 forward of a few small layers vs the same float32 numbers summed in double on the host.
constexpr double kHostAtol = 1e-5, kHostRtol = 1e-5;

std::vector<std::string> names(const nn::Module& m) {
  std::vector<std::string> out;
  for (auto& p : m.named_parameters()) out.push_back(p.first + p.second.shape().str());
  return out;
}

using test::synthetic;  // tests/synthetic.h

std::vector<float> train(Autoencoder& ae, const Dataset& data, int steps, int64_t batch, float lr, uint64_t seed) {
  optim::AdamOptions o;
  o.lr = lr;
  optim::Adam opt(ae.named_parameters(), o);
  Generator noise(seed);
  Batcher batches(data, batch, seed, Device::CPU, /*shuffle=*/true, /*drop_last=*/true);
  std::vector<float> losses;
  for (int64_t epoch = 0; (int)losses.size() < steps; ++epoch)
    for (batches.start_epoch(epoch); (int)losses.size() < steps && batches.next();) {
      AeLoss l = ae.loss(batches.x(), noise);
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

// sum_j (a_bj - b_bj)^2 per row, in double.
std::vector<double> row_sq_dist(const std::vector<float>& a, const std::vector<float>& b, int64_t B, int64_t D) {
  std::vector<double> out((size_t)B, 0.0);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < D; ++j) {
      const double d = (double)a[(size_t)(i * D + j)] - (double)b[(size_t)(i * D + j)];
      out[(size_t)i] += d * d;
    }
  return out;
}

AeConfig small(const std::string& kind) {
  AeConfig c;
  c.height = 3;
  c.width = 4;
  c.hidden = {6, 5};
  c.latent = 3;
  c.kind = kind;
  return c;
}

}  // namespace

TEST_CASE("ae: the default is the issue's 784-512-256-2 MLP with documented names", "[ae][model]") {
  Generator init(1);
  Autoencoder ae(AeConfig{}, init);
  REQUIRE(names(ae) == std::vector<std::string>{
                           "enc1.weight(512, 784)", "enc1.bias(512)", "enc2.weight(256, 512)", "enc2.bias(256)",
                           "enc_out.weight(2, 256)", "enc_out.bias(2)", "dec1.weight(256, 2)", "dec1.bias(256)",
                           "dec2.weight(512, 256)", "dec2.bias(512)", "dec_out.weight(784, 512)",
                           "dec_out.bias(784)"});
  for (auto& p : ae.named_parameters()) CHECK(p.second.requires_grad());
  REQUIRE(ae.num_parameters() == 1068306);  // the sum written out in ae.cpp
  Tensor x = Generator(2).rand({5, 784});
  Tensor z = ae.encode(x);
  REQUIRE(z.shape() == Shape{5, 2});
  REQUIRE(ae.decode(z).shape() == Shape{5, 784});
  reset_tape();
  REQUIRE(ae.reconstruct(x).shape() == Shape{5, 784});
  REQUIRE(tape_size() == 0);  // reconstruct records nothing

  REQUIRE_THROWS_WITH(ae.encode(Tensor::zeros({2, 783})), Catch::Contains("(B, 784)") && Catch::Contains("(2, 783)"));
  REQUIRE_THROWS_WITH(ae.decode(Tensor::zeros({2, 3})), Catch::Contains("(B, 2)") && Catch::Contains("(2, 3)"));
}

TEST_CASE("ae: conv variant names, shapes, and backward", "[ae][model]") {
  AeConfig c;
  c.arch = "conv";
  c.hidden = {64};
  c.latent = 4;
  Generator init(1);
  Autoencoder ae(c, init);
  REQUIRE(names(ae) == std::vector<std::string>{
                           "conv1.weight(32, 1, 4, 4)", "conv1.bias(32)", "conv2.weight(64, 32, 4, 4)", "conv2.bias(64)",
                           "enc1.weight(64, 3136)", "enc1.bias(64)", "enc_out.weight(4, 64)", "enc_out.bias(4)",
                           "dec1.weight(64, 4)", "dec1.bias(64)", "dec_out.weight(3136, 64)", "dec_out.bias(3136)",
                           "deconv1.weight(64, 32, 4, 4)", "deconv1.bias(32)", "deconv2.weight(32, 1, 4, 4)",
                           "deconv2.bias(1)"});
  Tensor x = Generator(3).rand({2, 784});
  REQUIRE(ae.encode(x).shape() == Shape{2, 4});
  Generator g(0);
  AeLoss l = ae.loss(x, g);
  REQUIRE(l.recon.shape() == Shape{2});
  backward(l.loss);
  for (auto& p : ae.named_parameters()) {
    INFO(p.first);
    REQUIRE(p.second.grad().defined());
  }
}

TEST_CASE("ae: config JSON round trip and validation errors name the field", "[ae][model]") {
  AeConfig c;
  c.arch = "conv";
  c.height = 32;
  c.width = 16;
  c.hidden = {100, 7};
  c.latent = 5;
  c.kind = "denoising";
  c.l1 = 0.1f;
  c.noise = "mask:0.25";
  AeConfig r = AeConfig::from_json(c.to_json());
  CHECK(r.arch == c.arch);
  CHECK(r.height == c.height);
  CHECK(r.width == c.width);
  CHECK(r.hidden == c.hidden);
  CHECK(r.latent == c.latent);
  CHECK(r.kind == c.kind);
  CHECK(r.l1 == c.l1);
  CHECK(r.noise == c.noise);
  CHECK(c.to_json().find("\"l1\":0.1,") != std::string::npos);  // not 0.10000000149011612
  CHECK(AeConfig::from_json(AeConfig{}.to_json()).to_json() == AeConfig{}.to_json());
  CHECK(AeConfig::from_json("{\"latent\": 3}").hidden == std::vector<int64_t>{512, 256});

  REQUIRE_THROWS_WITH(AeConfig::from_json("{\"latnet\": 2}"), Catch::Contains("unknown key 'latnet'"));
  REQUIRE_THROWS_WITH(AeConfig::from_json("{\"latent\": 2.5}"), Catch::Contains("latent") && Catch::Contains("2.5"));
  REQUIRE_THROWS_WITH(AeConfig::from_json("{\"noise\": 3}"), Catch::Contains("noise") && Catch::Contains("string"));
  REQUIRE_THROWS_WITH(AeConfig::from_json("[1]"), Catch::Contains("object"));
  REQUIRE_THROWS_WITH(AeConfig::from_json("{oops"), Catch::Contains("not valid JSON"));

  auto bad = [](auto edit) {
    AeConfig v;
    edit(v);
    return v;
  };
  REQUIRE_THROWS_WITH(bad([](AeConfig& v) { v.kind = "vae"; }).validate(),
                      Catch::Contains("kind") && Catch::Contains("'vae'"));
  REQUIRE_THROWS_WITH(bad([](AeConfig& v) { v.arch = "resnet"; }).validate(),
                      Catch::Contains("arch") && Catch::Contains("'resnet'"));
  REQUIRE_THROWS_WITH(bad([](AeConfig& v) { v.arch = "conv"; v.height = 30; }).validate(),
                      Catch::Contains("divisible by 4") && Catch::Contains("height 30"));
  REQUIRE_THROWS_WITH(bad([](AeConfig& v) { v.latent = 0; }).validate(), Catch::Contains("latent must be >= 1, got 0"));
  REQUIRE_THROWS_WITH(bad([](AeConfig& v) { v.hidden = {512, 0}; }).validate(),
                      Catch::Contains("hidden[1]") && Catch::Contains("got 0"));
  REQUIRE_THROWS_WITH(bad([](AeConfig& v) { v.hidden = {}; }).validate(), Catch::Contains("hidden"));
  REQUIRE_THROWS_WITH(bad([](AeConfig& v) { v.l1 = -1.f; }).validate(), Catch::Contains("l1") && Catch::Contains("-1"));
  REQUIRE_THROWS_WITH(bad([](AeConfig& v) { v.l1 = NAN; }).validate(), Catch::Contains("l1"));
  REQUIRE_THROWS_WITH(bad([](AeConfig& v) { v.noise = "salt:0.1"; }).validate(),
                      Catch::Contains("noise") && Catch::Contains("'salt'"));
  REQUIRE_THROWS_WITH(bad([](AeConfig& v) { v.noise = "mask:1.5"; }).validate(),
                      Catch::Contains("noise") && Catch::Contains("1.5"));
  Generator init(0);
  REQUIRE_THROWS_WITH(Autoencoder(bad([](AeConfig& v) { v.latent = -3; }), init), Catch::Contains("latent"));
}

TEST_CASE("ae: noise specs parse, print back, and errors name the value", "[ae][model]") {
  NoiseSpec g = NoiseSpec::parse("gaussian:0.3");
  CHECK(g.kind == "gaussian");
  CHECK(g.value == 0.3f);
  CHECK(g.str() == "gaussian:0.3");
  NoiseSpec m = NoiseSpec::parse("mask:0.5");
  CHECK(m.kind == "mask");
  CHECK(m.value == 0.5f);
  CHECK(NoiseSpec::parse(m.str()).value == m.value);
  CHECK(NoiseSpec::parse("gaussian:0").value == 0.f);
  CHECK(NoiseSpec::parse("mask:0").value == 0.f);

  REQUIRE_THROWS_WITH(NoiseSpec::parse("gaussian"), Catch::Contains("'gaussian'") && Catch::Contains("mask:<p>"));
  REQUIRE_THROWS_WITH(NoiseSpec::parse("uniform:0.1"), Catch::Contains("'uniform'"));
  REQUIRE_THROWS_WITH(NoiseSpec::parse("gaussian:abc"), Catch::Contains("'abc'") && Catch::Contains("number"));
  REQUIRE_THROWS_WITH(NoiseSpec::parse("gaussian:0.3x"), Catch::Contains("'0.3x'"));
  REQUIRE_THROWS_WITH(NoiseSpec::parse("gaussian:"), Catch::Contains("not a finite number"));
  REQUIRE_THROWS_WITH(NoiseSpec::parse("gaussian:inf"), Catch::Contains("'inf'"));
  REQUIRE_THROWS_WITH(NoiseSpec::parse("gaussian:-0.5"), Catch::Contains("sigma") && Catch::Contains("-0.5"));
  REQUIRE_THROWS_WITH(NoiseSpec::parse("mask:1"), Catch::Contains("[0, 1)") && Catch::Contains("got 1"));
  REQUIRE_THROWS_WITH(NoiseSpec::parse("mask:-0.1"), Catch::Contains("-0.1"));
}

TEST_CASE("ae: corrupt's statistics (gaussian mean and std, mask keep rate)", "[ae][model]") {
  const int64_t R = 200, C = 500;
  const double N = (double)(R * C);
  Tensor x = add(mul(Generator(4).rand({R, C}), 0.9f), 0.1f);  // in (0.1, 1]: no zero pixels
  x.set_requires_grad();  // corrupt must record nothing even for an input that requires grad
  const std::vector<float> hx = x.to_vector();
  reset_tape();

  SECTION("gaussian: x + sigma eps") {
    const double sigma = 0.5;
    Generator gen(7);
    Tensor y = corrupt(x, NoiseSpec::parse("gaussian:0.5"), gen);
    REQUIRE(tape_size() == 0);
    REQUIRE(!y.requires_grad());
    REQUIRE(y.shape() == x.shape());
    const std::vector<float> hy = y.to_vector();
    double s = 0, s2 = 0;
    for (size_t i = 0; i < hy.size(); ++i) {
      const double d = (double)hy[i] - (double)hx[i];
      s += d;
      s2 += d * d;
    }
    const double m = s / N, var = s2 / N - m * m;
    INFO("mean of y - x " << m << ", std " << std::sqrt(var));
    REQUIRE(std::fabs(m) < 5 * sigma / std::sqrt(N));  // 5 standard errors of the mean
    // The sample variance of N normals has standard error sigma^2 sqrt(2 / N).
    REQUIRE(std::fabs(var - sigma * sigma) < 5 * sigma * sigma * std::sqrt(2.0 / N));
    // The same seed gives the same noise.
    Generator again(7);
    REQUIRE(corrupt(x, NoiseSpec::parse("gaussian:0.5"), again).to_vector() == hy);
    Generator zero(7);
    REQUIRE(corrupt(x, NoiseSpec::parse("gaussian:0"), zero).to_vector() == hx);
  }
  SECTION("mask: keeps a fraction 1 - p, kept pixels unchanged, dropped ones zero") {
    for (double p : {0.3, 0.75}) {
      Generator gen(8);
      NoiseSpec spec;
      spec.kind = "mask";
      spec.value = (float)p;
      const std::vector<float> hy = corrupt(x, spec, gen).to_vector();
      REQUIRE(tape_size() == 0);
      int64_t kept = 0;
      for (size_t i = 0; i < hy.size(); ++i) {
        REQUIRE((hy[i] == hx[i] || hy[i] == 0.f));
        kept += hy[i] == hx[i];
      }
      const double frac = (double)kept / N;
      INFO("p " << p << ": kept fraction " << frac);
      REQUIRE(std::fabs(frac - (1 - p)) < 5 * std::sqrt(p * (1 - p) / N));
    }
    Generator gen(9);
    REQUIRE(corrupt(x, NoiseSpec::parse("mask:0"), gen).to_vector() == hx);
  }
  reset_tape();
}

TEST_CASE("ae: loss is the squared error to the clean x (plain and denoising)", "[ae][model]") {
  const int64_t B = 4, D = 12;
  Tensor x = Generator(5).rand({B, D});
  const std::vector<float> hx = x.to_vector();

  SECTION("ae: recon = ||D(E(x)) - x||^2, loss its mean, no l1") {
    Generator init(1), g(2);
    Autoencoder ae(small("ae"), init);
    AeLoss l = ae.loss(x, g);
    REQUIRE(!l.l1.defined());
    REQUIRE(g.offset() == 0);  // no noise drawn
    const std::vector<double> want = row_sq_dist(ae.reconstruct(x).to_vector(), hx, B, D);
    test::require_close("recon", l.recon.to_vector(), want, kHostAtol, kHostRtol);
    const double mean_want = (want[0] + want[1] + want[2] + want[3]) / 4;
    test::require_close("loss", l.loss.to_vector(), std::vector<double>{mean_want}, kHostAtol, kHostRtol);
    reset_tape();
  }
  SECTION("denoising: the corrupted input, the clean target") {
    for (const char* noise : {"mask:0.5", "gaussian:0.4"}) {
      AeConfig c = small("denoising");
      c.noise = noise;
      Generator init(1), g(11);
      Autoencoder ae(c, init);
      AeLoss l = ae.loss(x, g);
      REQUIRE(!l.l1.defined());
      Generator same(11);
      Tensor xt = corrupt(x, NoiseSpec::parse(noise), same);
      REQUIRE(same.offset() == g.offset());  // loss drew exactly corrupt's noise
      const std::vector<float> out = ae.reconstruct(xt).to_vector();
      const std::vector<double> want = row_sq_dist(out, hx, B, D);
      INFO(noise);
      test::require_close("recon vs the clean x", l.recon.to_vector(), want, kHostAtol, kHostRtol);
      // ... and not the error to the corrupted input.
      const std::vector<double> to_noisy = row_sq_dist(out, xt.to_vector(), B, D);
      double gap = 0;
      for (int64_t b = 0; b < B; ++b) gap += std::fabs(to_noisy[(size_t)b] - want[(size_t)b]);
      REQUIRE(gap > 1e-2);
      reset_tape();
    }
  }
}

TEST_CASE("ae: the sparse term adds lambda ||z||_1 and its gradient lambda sign(z) / B", "[ae][model]") {
  const int64_t B = 5;
  Tensor x = Generator(6).rand({B, 12});
  AeConfig cs = small("sparse");
  cs.l1 = 0.25f;  // large, so the term's share of the gradient is far above float rounding
  Generator i1(3), i2(3);
  Autoencoder plain(small("ae"), i1), sparse(cs, i2);  // same seed, same architecture: same weights
  Generator g1(0), g2(0);
  AeLoss a = plain.loss(x, g1);
  backward(a.loss);  // backward releases the tape: one model at a time
  AeLoss s = sparse.loss(x, g2);
  backward(s.loss);
  REQUIRE(s.l1.shape() == Shape{B});
  REQUIRE(s.recon.to_vector() == a.recon.to_vector());

  // z on the host: the sign pattern and the l1 norms.
  const std::vector<float> z = sparse.encode(x).to_vector();
  reset_tape();
  const int64_t k = cs.latent;
  std::vector<double> l1_want((size_t)B, 0.0), bias_diff((size_t)k, 0.0);
  double loss_want = 0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t j = 0; j < k; ++j) {
      const double v = z[(size_t)(b * k + j)];
      REQUIRE(v != 0.0);  // a generic point: sign(z) is unambiguous
      l1_want[(size_t)b] += std::fabs(v);
      bias_diff[(size_t)j] += cs.l1 * (v > 0 ? 1.0 : -1.0) / (double)B;  // dL/dz summed over rows
    }
    loss_want += ((double)a.recon.to_vector()[(size_t)b] + cs.l1 * l1_want[(size_t)b]) / (double)B;
  }
  test::require_close("l1", s.l1.to_vector(), l1_want, kHostAtol, kHostRtol);
  test::require_close("loss", s.loss.to_vector(), std::vector<double>{loss_want}, kHostAtol, kHostRtol);

  // The code z = enc_out(h) + b, so dL/d(enc_out.bias) = sum_b dL/dz_b: the sparse model's bias
  // gradient exceeds the plain one's by exactly lambda sum_b sign(z_b) / B. The decoder never sees
  // the L1 term: its gradients are identical.
  std::map<std::string, Tensor> ga, gs;
  for (auto& [n, t] : plain.named_parameters()) ga[n] = t.grad();
  for (auto& [n, t] : sparse.named_parameters()) gs[n] = t.grad();
  const std::vector<float> ba = ga.at("enc_out.bias").to_vector(), bs = gs.at("enc_out.bias").to_vector();
  std::vector<float> diff(ba.size());
  for (size_t j = 0; j < ba.size(); ++j) diff[j] = bs[j] - ba[j];
  test::require_close("enc_out.bias grad (sparse - plain)", diff, bias_diff, 1e-6, 1e-5);
  for (const char* n : {"dec1.weight", "dec1.bias", "dec2.weight", "dec_out.weight", "dec_out.bias"})
    REQUIRE(gs.at(n).to_vector() == ga.at(n).to_vector());

  reset_tape();
}

TEST_CASE("ae: every kind trains with Adam, lowers the loss, and reruns are bit-identical", "[ae][model]") {
  Dataset data = synthetic(256, 8, 8, 11);
  for (const char* kind : {"ae", "sparse", "denoising"}) {
    DYNAMIC_SECTION(kind) {
      AeConfig c;
      c.height = c.width = 8;
      c.hidden = {32, 16};
      c.latent = 2;
      c.kind = kind;
      c.noise = "mask:0.2";
      auto run = [&]() {
        Generator init(5);
        Autoencoder ae(c, init);
        return train(ae, data, 150, 32, 1e-2f, 9);
      };
      std::vector<float> a = run(), b = run();
      REQUIRE(a.size() == 150);
      REQUIRE(a == b);  // same seeds: the same losses, to the bit
      const double first = mean_of(a, 0, 10), last = mean_of(a, a.size() - 10, a.size());
      INFO(kind << ": step 0 " << a[0] << ", first 10 steps " << first << ", last 10 steps " << last);
      // 64 binary pixels, about half on: an untrained linear output near 0 costs ~32 per image;
      // 4 prototypes through a 2-d code are learnable down to roughly the 5% flips (~3.2).
      REQUIRE(last < 0.5 * first);
    }
  }
}
