// test_ops_vae.cpp: the fused VAE kernels in the op table (forward vs double reference,
// finite differences, CPU vs CUDA), plus hand-computed values, extreme inputs and the noise stream.
#include <catch2/catch.hpp>

#include <cmath>

#include "autograd/ops.h"
#include "core/philox.h"
#include "core/rng.h"
#include "kernels/vae.h"
#include "tests/op_table.h"

using namespace gt;
using namespace gt::test;

namespace {
constexpr uint64_t kSeed = 123;

RefResult per_row(const Shape& s, const std::function<double(int64_t, int64_t)>& term) {
  RefResult r{Shape{s[0]}, std::vector<double>((size_t)s[0], 0.0)};
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t j = 0; j < s[1]; ++j) r.v[(size_t)b] += term(b, j);
  return r;
}

std::vector<OpRow> rows() {
  std::vector<OpRow> r;
  r.push_back({"reparameterize (5, 7)",
               {normal({5, 7}), normal({5, 7}, 0.5f)},
               [](const std::vector<Tensor>& in) {
                 Generator g(kSeed);  // a fresh stream per call: gradcheck needs a deterministic f
                 return reparameterize(in[0], in[1], g);
               },
               [](const std::vector<HostTensor>& in) {
                 RefResult out{in[0].shape, {}};
                 for (size_t i = 0; i < in[0].v.size(); ++i)
                   out.v.push_back(in[0].v[i] + std::exp(0.5 * in[1].v[i]) * (double)philox_normal(kSeed, i));
                 return out;
               }});
  for (Shape s : {Shape{5, 7}, Shape{13, 11}}) {
    r.push_back({"kl_normal " + s.str(),
                 {normal(s), normal(s, 0.7f)},
                 [](const std::vector<Tensor>& in) { return kl_normal(in[0], in[1]); },
                 [s](const std::vector<HostTensor>& in) {
                   return per_row(s, [&](int64_t b, int64_t j) {
                     double mu = in[0].v[(size_t)(b * s[1] + j)], lv = in[1].v[(size_t)(b * s[1] + j)];
                     return 0.5 * (-lv - 1 + std::exp(lv) + mu * mu);
                   });
                 }});
  }
  r.push_back({"bernoulli_nll (7, 13)",
               {normal({7, 13}, 2.f), uniform({7, 13}, 0.f, 1.f)},
               [](const std::vector<Tensor>& in) { return bernoulli_nll(in[0], in[1]); },
               [](const std::vector<HostTensor>& in) {
                 return per_row({7, 13}, [&](int64_t b, int64_t j) {
                   double l = in[0].v[(size_t)(b * 13 + j)], x = in[1].v[(size_t)(b * 13 + j)];
                   double p = 1 / (1 + std::exp(-l));
                   return -(x * std::log(p) + (1 - x) * std::log(1 - p));
                 });
               }});
  struct G {
    const char* name;
    Shape lv;
  };
  for (G g : {G{"gaussian_nll scalar logvar", Shape{}}, G{"gaussian_nll per-dim logvar", Shape{7}},
              G{"gaussian_nll per-element logvar", Shape{5, 7}}}) {
    Shape lv = g.lv;
    r.push_back({g.name,
                 {normal({5, 7}), normal({5, 7}), normal(lv, 0.5f)},
                 [](const std::vector<Tensor>& in) { return gaussian_nll(in[0], in[1], in[2]); },
                 [lv](const std::vector<HostTensor>& in) {
                   return per_row({5, 7}, [&](int64_t b, int64_t j) {
                     size_t i = (size_t)(b * 7 + j);
                     double m = in[0].v[i], x = in[1].v[i];
                     double l = lv.size() == 0 ? in[2].v[0] : (lv.size() == 1 ? in[2].v[(size_t)j] : in[2].v[i]);
                     return 0.5 * ((x - m) * (x - m) * std::exp(-l) + l + std::log(2 * M_PI));
                   });
                 }});
  }
  return r;
}
}  // namespace

TEST_CASE("op table: vae", "[ops][vae]") { run_op_table(rows()); }
TEST_CASE("op table: vae cpu vs cuda", "[ops][vae][cuda]") { run_op_table_cuda(rows()); }

TEST_CASE("vae: reparameterisation noise is the generator's normal stream", "[vae]") {
  Generator a(77), b(77);
  a.uniform(Tensor::empty({3}).data(), 3, Device::CPU);  // leave an odd offset behind
  b.uniform(Tensor::empty({3}).data(), 3, Device::CPU);
  Tensor mu = Tensor::zeros({4, 5}), lv = Tensor::zeros({4, 5});
  Tensor eps;
  Tensor z = reparameterize(mu, lv, a, &eps);
  std::vector<float> want = b.randn({4, 5}).to_vector();
  require_close("eps vs Generator::randn", eps.to_vector(), want, 1e-6, 1e-6);
  require_close("z = eps when mu = 0, logvar = 0", z.to_vector(), want, 1e-6, 1e-6);
  REQUIRE(a.offset() == b.offset());  // both advanced the same way
  Tensor z2 = reparameterize(mu, lv, a);
  REQUIRE(z2.to_vector() != z.to_vector());  // the next call draws new noise
}

TEST_CASE("bernoulli_nll: the training forward equals the inference one, its gradient the two-pass kernel's", "[vae]") {
  // With logits requiring a gradient the CPU forward also saves sigmoid(l) - x and backward only scales
  // it; results must be bit for bit those of the plain forward and of bernoulli_nll_backward_cpu.
  const int64_t B = 37, D = 131;  // D: 8 blocks of 16 lanes and a tail of 3
  Generator gen(5);
  Tensor l = mul(gen.randn({B, D}), 6.f), x = gen.rand({B, D}), x2 = gen.rand({B, D}), dn = gen.randn({B});
  Tensor dn2 = gen.randn({B});
  const std::vector<float> inference = bernoulli_nll(l, x).to_vector();
  Tensor lt = l.clone().set_requires_grad(), xt = x.clone().set_requires_grad();
  REQUIRE(bernoulli_nll(lt, xt).to_vector() == inference);
  reset_tape();
  // l feeds two losses: the second gradient accumulates onto the first (beta = 1).
  Tensor a = bernoulli_nll(lt, xt), b = bernoulli_nll(lt, x2);
  backward(add(mul(a, dn), mul(b, dn2)), Tensor::ones({B}));
  std::vector<float> dl(B * D, 0.f), dx(B * D, 0.f);
  bernoulli_nll_backward_cpu(dl.data(), dx.data(), dn.data(), l.data(), x.data(), B, D);
  std::vector<float> dl2(B * D, 0.f);
  bernoulli_nll_backward_cpu(dl2.data(), nullptr, dn2.data(), l.data(), x2.data(), B, D);
  const std::vector<float> got = lt.grad().to_vector();
  for (int64_t i = 0; i < B * D; ++i) {
    INFO("element " << i);
    REQUIRE(got[(size_t)i] == Approx(dl[(size_t)i] + dl2[(size_t)i]).epsilon(1e-6).margin(1e-7));
  }
  REQUIRE(xt.grad().to_vector() == dx);
  // One loss alone: the gradient is the two-pass kernel's exactly.
  Tensor l1 = l.clone().set_requires_grad();
  backward(bernoulli_nll(l1, x), dn);
  REQUIRE(l1.grad().to_vector() == dl);
}

TEST_CASE("vae: hand-computed KL and likelihoods, stable at extremes", "[vae]") {
  Tensor mu = Tensor::from_vector({0, 0, 1, 0}, {2, 2}), lv = Tensor::from_vector({0, 0, 0, std::log(2.f)}, {2, 2});
  std::vector<float> kl = kl_normal(mu, lv).to_vector();
  REQUIRE(kl[0] == Approx(0.0).margin(1e-7));                               // q = p
  REQUIRE(kl[1] == Approx(0.5 + 0.5 * (1 - std::log(2.0))).epsilon(1e-6));  // mu 1; sigma^2 2
  Tensor logits = Tensor::from_vector({100, -100, 100, -100, 0, 0}, {3, 2});
  Tensor x = Tensor::from_vector({1, 0, 0, 1, 1, 0}, {3, 2});
  std::vector<float> nll = bernoulli_nll(logits, x).to_vector();
  REQUIRE(nll[0] == Approx(0.0).margin(1e-6));  // confident and right: no overflow
  REQUIRE(nll[1] == Approx(200.0));             // confident and wrong: exactly the logits
  REQUIRE(nll[2] == Approx(2 * std::log(2.0)));
  Tensor m = Tensor::from_vector({0, 0}, {1, 2}), xx = Tensor::from_vector({1, -1}, {1, 2});
  REQUIRE(gaussian_nll(m, xx, Tensor::scalar(0.f)).item() == Approx(1.0 + std::log(2 * M_PI)));
  REQUIRE_THROWS_WITH(gaussian_nll(m, xx, Tensor::zeros({3})), Catch::Contains("logvar (3)"));
  REQUIRE_THROWS_WITH(kl_normal(mu, Tensor::zeros({2, 3})), Catch::Contains("(2, 2)") && Catch::Contains("(2, 3)"));
}
