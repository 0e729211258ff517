// test_diffusion.cpp: DDPM schedules (models/diffusion.h) and the fused diffusion kernels
// (kernels/diffusion.h): schedule identities and the closed form against the iterated chain
// (deterministically and by Monte Carlo), each kernel against a double reference on the same Philox
// draws, exact identities (x̂₀ from the true ε is x₀; one DDIM step with the true ε lands on
// q_sample; the ancestral mean is the posterior mean), the ε-loss in the op table (forward,
// gradcheck, CPU vs CUDA), validation errors, and CPU vs CUDA for every kernel ([cuda]).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <numeric>

#include "autograd/ops.h"
#include "core/philox.h"
#include "core/rng.h"
#include "models/diffusion.h"
#include "tests/op_table.h"

using namespace gt;
using namespace gt::test;
using gt::diffusion::Schedule;
using gt::diffusion::ScheduleConfig;

namespace {

// Double-precision identities of tables built in double: a few ulps of accumulated rounding over
// T = 1000 recursion steps.
constexpr double kTableTol = 1e-12;
// A float kernel against a double reference with the same draws: float32 rounding of O(1) values
// (x_t, ε, the coefficients are all O(1)).
constexpr double kKernelAtol = 1e-6, kKernelRtol = 1e-5;
// Formulas that divide by √ᾱ_t (x̂₀, the DDIM step) amplify the float rounding of x_t − √β̄_t ε̂
// (a few ulps of O(1) numbers, ~1e-6) by 1/√ᾱ_t, up to 157 at t = 1000 on the linear schedule.
// Their absolute tolerance is per sample: kKernelAtol / √ᾱ_t.
// CPU vs CUDA: the device's sinf/cosf/logf in Box-Muller differ from the host's in the last bits.
constexpr double kDevAtol = 1e-5, kDevRtol = 1e-5;

ScheduleConfig config(const std::string& schedule, const std::string& form = "vp",
                      const std::string& variance = "beta", int64_t T = 1000) {
  ScheduleConfig c;
  c.schedule = schedule;
  c.form = form;
  c.variance = variance;
  c.T = T;
  return c;
}

// B timesteps in lo..hi drawn from Philox (fixed, so failures reproduce), with lo and hi included.
std::vector<int32_t> timesteps(int64_t B, int64_t lo, int64_t hi, uint64_t seed) {
  std::vector<int32_t> t((size_t)B);
  for (int64_t b = 0; b < B; ++b) t[(size_t)b] = (int32_t)(lo + (int64_t)(philox_bits(seed, (uint64_t)b) % (uint64_t)(hi - lo + 1)));
  t[0] = (int32_t)lo;
  if (B > 1) t[(size_t)B - 1] = (int32_t)hi;
  return t;
}

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// |got - want| <= atol_b + rtol |want| with a per-sample absolute tolerance atol_b.
void require_close_rows(const std::string& what, const std::vector<float>& got, const std::vector<double>& want,
                        int64_t B, const std::vector<double>& atol, double rtol) {
  REQUIRE(got.size() == want.size());
  const size_t D = got.size() / (size_t)B;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<float> g(got.begin() + (long)(b * D), got.begin() + (long)((b + 1) * D));
    std::vector<double> w(want.begin() + (long)(b * D), want.begin() + (long)((b + 1) * D));
    require_close(what + ", sample " + std::to_string(b), g, w, atol[(size_t)b], rtol);
  }
}

// The float tables the kernels read, as doubles (references built on them see only the kernel's own
// float arithmetic).
struct FloatTables {
  std::vector<double> sab, sbb, isa, coef, sig;
  explicit FloatTables(const Schedule& s)
      : sab(as_double(s.sqrt_alpha_bar().to_vector())),
        sbb(as_double(s.sqrt_beta_bar().to_vector())),
        isa(as_double(s.inv_sqrt_alpha().to_vector())),
        coef(as_double(s.eps_coef().to_vector())),
        sig(as_double(s.sigma().to_vector())) {}
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Schedules

TEST_CASE("diffusion schedule: linear β endpoints, linearity, index convention", "[diffusion]") {
  Schedule s(config("linear"));
  const auto& beta = s.host_beta();
  REQUIRE(s.T() == 1000);
  REQUIRE(beta.size() == 1001);  // index = t, entry 0 is t = 0
  REQUIRE(beta[0] == 0.0);
  REQUIRE(beta[1] == Approx(1e-4).epsilon(1e-14));
  REQUIRE(beta[1000] == Approx(0.02).epsilon(1e-14));
  const double step = (0.02 - 1e-4) / 999;
  for (size_t t = 2; t <= 1000; ++t) REQUIRE(beta[t] - beta[t - 1] == Approx(step).epsilon(1e-9));
  REQUIRE(s.host_alpha_bar()[0] == 1.0);
  REQUIRE(s.host_beta_bar()[0] == 0.0);
  // The float tables at t = 0: q_sample returns x₀, a DDIM step to 0 returns x̂₀.
  REQUIRE(s.sqrt_alpha_bar().to_vector()[0] == 1.f);
  REQUIRE(s.sqrt_beta_bar().to_vector()[0] == 0.f);
  REQUIRE(s.sigma().to_vector()[0] == 0.f);
  REQUIRE(s.sqrt_alpha_bar().shape() == Shape{1001});
  // ᾱ_T for the linear schedule with T = 1000, from an independent Python loop: 4.0358297653756754e-05.
  REQUIRE(s.host_alpha_bar()[1000] == Approx(4.0358297653756754e-05).epsilon(1e-12));
}

TEST_CASE("diffusion schedule: VP has ᾱ_t + β̄_t = 1; VE has ᾱ_t = 1 and β̄_t = Σβ", "[diffusion]") {
  for (const char* kind : {"linear", "cosine"}) {
    INFO(kind);
    Schedule vp(config(kind, "vp"));
    for (int64_t t = 0; t <= vp.T(); ++t) {
      REQUIRE(vp.host_alpha_bar()[(size_t)t] + vp.host_beta_bar()[(size_t)t] == Approx(1.0).margin(kTableTol));
      REQUIRE(vp.host_alpha()[(size_t)t] + vp.host_beta()[(size_t)t] == Approx(1.0).margin(kTableTol));
    }
    Schedule ve(config(kind, "ve"));
    double sum = 0;
    for (int64_t t = 0; t <= ve.T(); ++t) {
      sum += ve.host_beta()[(size_t)t];
      REQUIRE(ve.host_alpha()[(size_t)t] == 1.0);
      REQUIRE(ve.host_alpha_bar()[(size_t)t] == 1.0);
      REQUIRE(ve.host_beta_bar()[(size_t)t] == Approx(sum).epsilon(kTableTol));
    }
    REQUIRE(ve.host_beta() == vp.host_beta());  // the form changes α, not β
  }
}

TEST_CASE("diffusion schedule: cosine ᾱ_t is f(t)/f(0) until β is clipped", "[diffusion]") {
  const ScheduleConfig c = config("cosine");
  Schedule s(c);
  auto f = [&](double t) {
    const double v = std::cos((t / 1000.0 + 0.008) / 1.008 * M_PI / 2);
    return v * v;
  };
  int64_t checked = 0;
  for (int64_t t = 1; t <= 1000; ++t) {
    if (s.host_beta()[(size_t)t] >= c.max_beta) break;  // the first clip ends the telescoping product
    REQUIRE(s.host_alpha_bar()[(size_t)t] == Approx(f((double)t) / f(0)).epsilon(1e-9));
    ++checked;
  }
  REQUIRE(checked > 990);                             // only the last few steps clip
  REQUIRE(s.host_beta()[1000] == Approx(0.999).epsilon(1e-15));  // f(T) = 0: β_T is the clip
  for (int64_t t = 1; t <= 1000; ++t) REQUIRE(s.host_beta()[(size_t)t] > 0);
}

TEST_CASE("diffusion schedule: closed form equals the iterated chain (coefficients)", "[diffusion]") {
  // Iterating x_t = √α_t x_{t−1} + √β_t z_t from x₀ gives x_t = (Π_{r≤t} √α_r) x₀ + Σ_s (Π_{s<r≤t} √α_r) √β_s z_s:
  // mean coefficient Π √α_r, variance Σ_s β_s Π_{s<r≤t} α_r — computed here by unrolling, not by the
  // recursions the schedule uses.
  for (const char* kind : {"linear", "cosine"}) {
    for (const char* form : {"vp", "ve"}) {
      INFO(kind << " " << form);
      Schedule s(config(kind, form, "beta", 300));
      const auto &a = s.host_alpha(), &b = s.host_beta();
      for (int64_t t = 1; t <= s.T(); ++t) {
        double mean_coef = 1, var = 0;
        for (int64_t r = 1; r <= t; ++r) mean_coef *= std::sqrt(a[(size_t)r]);
        for (int64_t q = 1; q <= t; ++q) {
          double prod = 1;
          for (int64_t r = q + 1; r <= t; ++r) prod *= a[(size_t)r];
          var += b[(size_t)q] * prod;
        }
        REQUIRE(std::sqrt(s.host_alpha_bar()[(size_t)t]) == Approx(mean_coef).epsilon(kTableTol));
        REQUIRE(s.host_beta_bar()[(size_t)t] == Approx(var).epsilon(kTableTol));
      }
    }
  }
}

TEST_CASE("diffusion schedule: closed form equals the iterated chain (Monte Carlo)", "[diffusion]") {
  // N chains x_t = √α_t x_{t−1} + √β_t z_t from x₀ = 1.5, iterated in double; at several t the
  // sample mean and variance must match √ᾱ_t x₀ and β̄_t within 5 standard errors
  // (SE of the mean √(β̄/N), of the variance β̄ √(2/(N−1)) for a Gaussian).
  constexpr int64_t N = 8000;
  constexpr double x0 = 1.5, kSE = 5.0;
  struct Case {
    const char* kind;
    const char* form;
    int64_t T;
  };
  for (Case c : {Case{"linear", "vp", 1000}, Case{"cosine", "vp", 200}, Case{"linear", "ve", 200}}) {
    INFO(c.kind << " " << c.form << " T=" << c.T);
    Schedule s(config(c.kind, c.form, "beta", c.T));
    std::vector<double> x((size_t)N, x0);
    std::vector<float> z((size_t)N);
    Generator gen(2024);
    int64_t checks = 0;
    for (int64_t t = 1; t <= c.T; ++t) {
      gen.normal(z.data(), N, Device::CPU);
      const double sa = std::sqrt(s.host_alpha()[(size_t)t]), sb = std::sqrt(s.host_beta()[(size_t)t]);
      for (int64_t k = 0; k < N; ++k) x[(size_t)k] = sa * x[(size_t)k] + sb * (double)z[(size_t)k];
      if (t == 1 || t == 10 || t % (c.T / 4) == 0) {
        const double m = std::accumulate(x.begin(), x.end(), 0.0) / N;
        double v = 0;
        for (double xi : x) v += (xi - m) * (xi - m);
        v /= (N - 1);
        const double want_m = std::sqrt(s.host_alpha_bar()[(size_t)t]) * x0, want_v = s.host_beta_bar()[(size_t)t];
        INFO("t=" << t << " mean " << m << " vs " << want_m << ", variance " << v << " vs " << want_v);
        REQUIRE(std::fabs(m - want_m) <= kSE * std::sqrt(want_v / N));
        REQUIRE(std::fabs(v - want_v) <= kSE * want_v * std::sqrt(2.0 / (N - 1)));
        ++checks;
      }
    }
    REQUIRE(checks >= 5);
  }
}

TEST_CASE("diffusion schedule: σ_t² = β_t or the posterior variance β̃_t", "[diffusion]") {
  for (const char* form : {"vp", "ve"}) {
    INFO(form);
    Schedule beta(config("linear", form, "beta")), post(config("linear", form, "posterior"));
    const auto &a = post.host_alpha(), &b = post.host_beta(), &bb = post.host_beta_bar(),
               &ab = post.host_alpha_bar();
    REQUIRE(beta.host_sigma2() == beta.host_beta());
    REQUIRE(post.host_sigma2()[1] == 0.0);  // q(x_0 | x_1, x_0) is a point mass
    for (size_t t = 1; t <= 1000; ++t) {
      REQUIRE(post.host_sigma2()[t] == Approx(b[t] * bb[t - 1] / bb[t]).epsilon(kTableTol));
      if (t >= 2) {
        // Gaussian conditioning: x_{t−1} | x₀ ~ N(·, β̄_{t−1}) and x_t | x_{t−1} ~ N(√α_t x_{t−1}, β_t)
        // give Var(x_{t−1} | x_t, x₀) = (1/β̄_{t−1} + α_t/β_t)^−1.
        REQUIRE(post.host_sigma2()[t] == Approx(1 / (1 / bb[t - 1] + a[t] / b[t])).epsilon(1e-10));
        if (std::string(form) == "vp")  // Ho et al. (7): β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t
          REQUIRE(post.host_sigma2()[t] == Approx((1 - ab[t - 1]) / (1 - ab[t]) * b[t]).epsilon(1e-9));
      }
    }
    // The float tables: σ_t, 1/√α_t, β_t/√β̄_t.
    const std::vector<float> sig = post.sigma().to_vector(), isa = post.inv_sqrt_alpha().to_vector(),
                             coef = post.eps_coef().to_vector();
    for (size_t t = 1; t <= 1000; ++t) {
      REQUIRE(sig[t] == Approx(std::sqrt(post.host_sigma2()[t])).epsilon(1e-7).margin(1e-30));
      REQUIRE(isa[t] == Approx(1 / std::sqrt(a[t])).epsilon(1e-7));
      REQUIRE(coef[t] == Approx(b[t] / std::sqrt(bb[t])).epsilon(1e-7));
    }
  }
}

TEST_CASE("diffusion schedule: validation and JSON", "[diffusion]") {
  REQUIRE_THROWS_WITH(Schedule(config("linear", "vp", "beta", 1)), Catch::Contains("T must be") && Catch::Contains("1"));
  REQUIRE_THROWS_WITH(Schedule(config("quadratic")), Catch::Contains("'quadratic'"));
  REQUIRE_THROWS_WITH(Schedule(config("linear", "sub-vp")), Catch::Contains("form") && Catch::Contains("'sub-vp'"));
  REQUIRE_THROWS_WITH(Schedule(config("linear", "vp", "learned")), Catch::Contains("'learned'"));
  ScheduleConfig c;
  c.beta_end = 1.5;  // α_T < 0 for VP
  REQUIRE_THROWS_WITH(Schedule(c), Catch::Contains("beta_end") && Catch::Contains("1.5"));
  c.form = "ve";  // fine for VE
  REQUIRE_NOTHROW(Schedule(c));
  c = config("cosine");
  c.max_beta = 1.0;
  REQUIRE_THROWS_WITH(Schedule(c), Catch::Contains("max_beta"));

  c = config("cosine", "vp", "posterior", 250);
  c.cosine_s = 0.01;
  const ScheduleConfig back = ScheduleConfig::from_json(c.to_json());
  REQUIRE(back.to_json() == c.to_json());
  REQUIRE(back.schedule == "cosine");
  REQUIRE(back.T == 250);
  REQUIRE(back.variance == "posterior");
  REQUIRE(back.cosine_s == 0.01);
  REQUIRE(ScheduleConfig::from_json("{}").to_json() == ScheduleConfig().to_json());
  REQUIRE(ScheduleConfig().to_json().find("\"beta_start\":0.0001") != std::string::npos);
  REQUIRE_THROWS_WITH(ScheduleConfig::from_json("{\"steps\": 10}"), Catch::Contains("unknown key 'steps'"));
  REQUIRE_THROWS_WITH(ScheduleConfig::from_json("{\"T\": 1}"), Catch::Contains("T must be"));
  REQUIRE_THROWS_WITH(ScheduleConfig::from_json("{\"T\": \"many\"}"), Catch::Contains("'T' must be an integer"));
}

// ---------------------------------------------------------------------------------------------
// Kernels against double references

TEST_CASE("diffusion: q_sample against a double reference on the same Philox draws", "[diffusion]") {
  for (const char* kind : {"linear", "cosine"}) {
    Schedule s(config(kind));
    const FloatTables ft(s);
    for (Shape shape : {Shape{5, 7}, Shape{13, 11}, Shape{4, 1, 3, 5}}) {
      INFO(kind << " " << shape);
      const int64_t B = shape[0], D = shape.numel() / B;
      const uint64_t seed = 31;
      Generator gen(seed), twin(seed);
      gen.uniform(Tensor::empty({3}).data(), 3, Device::CPU);  // leave an odd offset behind
      twin.uniform(Tensor::empty({3}).data(), 3, Device::CPU);
      Tensor x0 = Generator(7).randn(shape);
      std::vector<int32_t> tv = timesteps(B, 0, 1000, 5);  // t = 0 (no noise) .. T
      Tensor t = Tensor::from_indices(tv, {B});
      Tensor eps;
      Tensor xt = diffusion::q_sample(x0, t, s, gen, &eps);
      REQUIRE(xt.shape() == shape);
      REQUIRE(eps.shape() == shape);
      // ε is the generator's normal stream from the rounded-up offset 4, as Generator::normal draws it.
      require_close("eps vs Generator::randn", eps.to_vector(), twin.randn(shape).to_vector(), 1e-6, 1e-6);
      REQUIRE(gen.offset() == twin.offset());
      const std::vector<float> x = x0.to_vector();
      std::vector<double> want;
      for (int64_t i = 0; i < B * D; ++i) {
        const size_t tb = (size_t)tv[(size_t)(i / D)];
        want.push_back(ft.sab[tb] * x[(size_t)i] + ft.sbb[tb] * (double)philox_normal(seed, 4 + (uint64_t)i));
      }
      require_close("x_t vs double reference", xt.to_vector(), want, kKernelAtol, kKernelRtol);
      // The double schedule too: the float tables are within float rounding of it.
      for (int64_t b = 0; b < B; ++b)
        REQUIRE(ft.sab[(size_t)tv[(size_t)b]] ==
                Approx(std::sqrt(s.host_alpha_bar()[(size_t)tv[(size_t)b]])).epsilon(1e-7));
      const std::vector<float> xtv = xt.to_vector();  // sample 0 has t = 0: x_t = x0 exactly
      REQUIRE(std::vector<float>(xtv.begin(), xtv.begin() + D) == std::vector<float>(x.begin(), x.begin() + D));
    }
  }
}

TEST_CASE("diffusion: ancestral step against a double reference, z = 0 at t = 1", "[diffusion]") {
  for (const char* variance : {"beta", "posterior"}) {
    for (const char* form : {"vp", "ve"}) {
      INFO(variance << " " << form);
      Schedule s(config("linear", form, variance));
      const FloatTables ft(s);
      const int64_t B = 13, D = 11;
      const uint64_t seed = 8;
      Generator gen(seed);
      Tensor xt = Generator(3).randn({B, D}), ep = Generator(4).randn({B, D});
      std::vector<int32_t> tv = timesteps(B, 1, 1000, 9);
      tv[1] = 1;  // two samples at t = 1
      tv[2] = 2;
      Tensor x0_pred;
      Tensor xp = diffusion::ddpm_step(xt, ep, Tensor::from_indices(tv, {B}), s, gen, &x0_pred);
      REQUIRE(gen.offset() == (uint64_t)(B * D + 1));  // B·D = 143 normals, rounded to a pair
      const std::vector<float> x = xt.to_vector(), e = ep.to_vector();
      std::vector<double> want, want_x0, atol_x0;
      for (int64_t i = 0; i < B * D; ++i) {
        const size_t tb = (size_t)tv[(size_t)(i / D)];
        const double z = tb == 1 ? 0.0 : (double)philox_normal(seed, (uint64_t)i);
        want.push_back(ft.isa[tb] * (x[(size_t)i] - ft.coef[tb] * e[(size_t)i]) + ft.sig[tb] * z);
        want_x0.push_back((x[(size_t)i] - ft.sbb[tb] * e[(size_t)i]) / ft.sab[tb]);
      }
      for (int32_t tb : tv) atol_x0.push_back(kKernelAtol / ft.sab[(size_t)tb]);
      require_close("x_{t-1} vs double reference", xp.to_vector(), want, kKernelAtol, kKernelRtol);
      require_close_rows("x0_pred vs double reference", x0_pred.to_vector(), want_x0, B, atol_x0, kKernelRtol);
      // t = 1: no noise at all, whatever σ_1 is (β_1 = 1e-4 for "beta").
      for (int64_t j = 0; j < D; ++j) {
        const size_t i = (size_t)(D + j);
        REQUIRE(xp.to_vector()[i] == Approx(ft.isa[1] * (x[i] - ft.coef[1] * e[i])).epsilon(1e-6));
      }
    }
  }
}

TEST_CASE("diffusion: DDIM step against a double reference; t' = 0 returns x̂₀", "[diffusion]") {
  for (const char* kind : {"linear", "cosine"}) {
    INFO(kind);
    Schedule s(config(kind));
    const FloatTables ft(s);
    const int64_t B = 11, D = 7;
    Tensor xt = Generator(13).randn({B, D}), ep = Generator(14).randn({B, D});
    std::vector<int32_t> tv = timesteps(B, 1, 1000, 15), tn((size_t)B);
    for (int64_t b = 0; b < B; ++b) tn[(size_t)b] = (int32_t)(philox_bits(16, (uint64_t)b) % (uint32_t)tv[(size_t)b]);
    tn[3] = 0;
    Tensor t = Tensor::from_indices(tv, {B}), t_next = Tensor::from_indices(tn, {B});
    Tensor x0_pred;
    Tensor xn = diffusion::ddim_step(xt, ep, t, t_next, s, &x0_pred);
    const std::vector<float> x = xt.to_vector(), e = ep.to_vector();
    std::vector<double> want, want_x0, atol;
    for (int64_t i = 0; i < B * D; ++i) {
      const size_t tb = (size_t)tv[(size_t)(i / D)], nb = (size_t)tn[(size_t)(i / D)];
      const double x0 = (x[(size_t)i] - ft.sbb[tb] * e[(size_t)i]) / ft.sab[tb];
      want_x0.push_back(x0);
      want.push_back(ft.sab[nb] * x0 + ft.sbb[nb] * e[(size_t)i]);
    }
    for (int64_t b = 0; b < B; ++b) atol.push_back(kKernelAtol / ft.sab[(size_t)tv[(size_t)b]]);
    require_close_rows("x_{t'} vs double reference", xn.to_vector(), want, B, atol, kKernelRtol);
    require_close_rows("x0_pred vs double reference", x0_pred.to_vector(), want_x0, B, atol, kKernelRtol);
    // t' = 0 for every sample: the step is x̂₀ itself, bit for bit.
    Tensor zeros = Tensor::from_indices(std::vector<int32_t>((size_t)B, 0), {B});
    REQUIRE(diffusion::ddim_step(xt, ep, t, zeros, s).to_vector() == x0_pred.to_vector());
  }
}

TEST_CASE("diffusion: exact identities with the true ε", "[diffusion]") {
  // With ε̂ = ε, the ε that q_sample drew: x̂₀ = x₀ (q_sample solved for x₀); a DDIM step lands
  // exactly on q_sample at t' with the same ε; the ancestral step minus its noise σ_t z is the
  // posterior mean μ̃_t = (√ᾱ_{t−1} β_t x₀ + √α_t β̄_{t−1} x_t)/β̄_t, which at t = 1 is x₀ itself.
  Schedule s(config("linear", "vp", "posterior"));
  const FloatTables ft(s);
  const int64_t B = 9, D = 13;
  Generator gen(55);
  Tensor x0 = Generator(56).randn({B, D});
  std::vector<int32_t> tv = timesteps(B, 1, 1000, 57);
  tv[1] = 1;
  Tensor t = Tensor::from_indices(tv, {B});
  Tensor eps;
  Tensor xt = diffusion::q_sample(x0, t, s, gen, &eps);
  const std::vector<float> x0v = x0.to_vector(), xtv = xt.to_vector(), ev = eps.to_vector();
  std::vector<double> atol;
  for (int32_t tb : tv) atol.push_back(kKernelAtol / ft.sab[(size_t)tb]);

  // x̂₀ from the ancestral step and from DDIM to 0.
  Tensor x0_pred;
  const uint64_t offset = gen.offset();
  Tensor xp = diffusion::ddpm_step(xt, eps, t, s, gen, &x0_pred);
  require_close_rows("x0_pred (ddpm_step) = x0", x0_pred.to_vector(), as_double(x0v), B, atol, kKernelRtol);
  Tensor zeros = Tensor::from_indices(std::vector<int32_t>((size_t)B, 0), {B});
  require_close_rows("ddim_step to 0 = x0", diffusion::ddim_step(xt, eps, t, zeros, s).to_vector(), as_double(x0v), B,
                     atol, kKernelRtol);

  // DDIM to t' = t/2 with the true ε is q_sample at t' with the same ε.
  std::vector<int32_t> half;
  for (int32_t tb : tv) half.push_back(tb / 2);
  std::vector<double> want;
  for (int64_t i = 0; i < B * D; ++i) {
    const size_t nb = (size_t)half[(size_t)(i / D)];
    want.push_back(std::sqrt(s.host_alpha_bar()[nb]) * x0v[(size_t)i] + std::sqrt(s.host_beta_bar()[nb]) * ev[(size_t)i]);
  }
  require_close_rows("ddim_step with true eps = q_sample(t')",
                     diffusion::ddim_step(xt, eps, t, Tensor::from_indices(half, {B}), s).to_vector(), want, B, atol,
                     kKernelRtol);

  // The ancestral mean is the posterior mean of q(x_{t−1} | x_t, x₀).
  const std::vector<float> xpv = xp.to_vector();
  std::vector<double> got_mean, want_mean;
  for (int64_t i = 0; i < B * D; ++i) {
    const size_t tb = (size_t)tv[(size_t)(i / D)];
    const double z = tb == 1 ? 0.0 : (double)philox_normal(55, offset + (uint64_t)i);
    const auto &ab = s.host_alpha_bar(), &bb = s.host_beta_bar();
    got_mean.push_back(xpv[(size_t)i] - ft.sig[tb] * z);
    want_mean.push_back((std::sqrt(ab[tb - 1]) * s.host_beta()[tb] * x0v[(size_t)i] +
                         std::sqrt(s.host_alpha()[tb]) * bb[tb - 1] * xtv[(size_t)i]) /
                        bb[tb]);
  }
  std::vector<float> got_f(got_mean.begin(), got_mean.end());
  require_close("ancestral mean = posterior mean", got_f, want_mean, 1e-5, 1e-5);
  for (int64_t j = 0; j < D; ++j)  // t = 1 with the true ε returns x₀
    REQUIRE(xpv[(size_t)(D + j)] == Approx(x0v[(size_t)(D + j)]).margin(1e-5));
}

TEST_CASE("diffusion: wrapper and kernel errors", "[diffusion]") {
  Schedule s(config("linear", "vp", "beta", 50));
  Generator gen(1);
  Tensor x = Tensor::zeros({3, 4}), e = Tensor::zeros({3, 4});
  auto ts = [](std::vector<int32_t> v) { return Tensor::from_indices(v, {(int64_t)v.size()}); };
  REQUIRE_THROWS_WITH(diffusion::q_sample(x, ts({1, 51, 2}), s, gen),
                      Catch::Contains("t[1] = 51") && Catch::Contains("0..50"));
  REQUIRE_THROWS_WITH(diffusion::q_sample(x, ts({1, 2}), s, gen), Catch::Contains("(2)") && Catch::Contains("(3, 4)"));
  REQUIRE_THROWS_WITH(diffusion::q_sample(x, Tensor::zeros({3}), s, gen), Catch::Contains("int32"));
  REQUIRE_THROWS_WITH(diffusion::ddpm_step(x, e, ts({1, 0, 2}), s, gen), Catch::Contains("t[1] = 0"));
  REQUIRE_THROWS_WITH(diffusion::ddpm_step(x, Tensor::zeros({3, 5}), ts({1, 1, 1}), s, gen),
                      Catch::Contains("(3, 4)") && Catch::Contains("(3, 5)"));
  REQUIRE_THROWS_WITH(diffusion::ddim_step(x, e, ts({5, 5, 5}), ts({0, 5, 1}), s),
                      Catch::Contains("t_next[1] = 5") && Catch::Contains("below t"));
  REQUIRE_THROWS_WITH(diffusion::ddim_step(x, e, ts({5, 5, 5}), ts({0, 1, 1}), Schedule(config("linear", "ve"))),
                      Catch::Contains("variance-preserving") && Catch::Contains("'ve'"));
  REQUIRE(gen.offset() == 0);  // failed calls draw nothing

  // The kernels themselves never read outside the tables: an out-of-range sample's outputs are NaN
  // (what the CUDA path does, where the wrapper cannot check without a synchronisation).
  const DiffusionTables tab = s.tables();
  const int32_t t_bad[2] = {50, 51};
  std::vector<float> x0(8, 1.f), xt(8), eps(8), x0p(8);
  q_sample_cpu(xt.data(), eps.data(), x0.data(), t_bad, tab, 2, 4, 1, 0);
  REQUIRE(std::isfinite(xt[3]));
  REQUIRE(std::isnan(xt[4]));
  ddpm_step_cpu(xt.data(), x0p.data(), x0.data(), x0.data(), t_bad, tab, 2, 4, 1, 0);
  REQUIRE(std::isfinite(xt[0]));
  REQUIRE((std::isnan(xt[7]) && std::isnan(x0p[7])));
  const int32_t t_ok[2] = {5, 5}, t_next_bad[2] = {4, 5};
  ddim_step_cpu(xt.data(), nullptr, x0.data(), x0.data(), t_ok, t_next_bad, tab, 2, 4);
  REQUIRE(std::isfinite(xt[0]));
  REQUIRE(std::isnan(xt[4]));
}

// ---------------------------------------------------------------------------------------------
// The ε-prediction loss: op table (forward, gradcheck, CPU vs CUDA)

namespace {
std::vector<OpRow> loss_rows() {
  std::vector<OpRow> r;
  for (Shape s : {Shape{5, 7}, Shape{13, 11}, Shape{3, 1, 4, 5}}) {
    r.push_back({"ddpm_eps_loss " + s.str(),
                 {normal(s), normal(s)},
                 [](const std::vector<Tensor>& in) { return ddpm_eps_loss(in[0], in[1]); },
                 [s](const std::vector<HostTensor>& in) {
                   const int64_t B = s[0], D = s.numel() / B;
                   RefResult out{Shape{B}, std::vector<double>((size_t)B, 0.0)};
                   for (int64_t i = 0; i < B * D; ++i) {
                     const double d = in[0].v[(size_t)i] - in[1].v[(size_t)i];
                     out.v[(size_t)(i / D)] += d * d / (double)D;
                   }
                   return out;
                 }});
  }
  return r;
}
}  // namespace

TEST_CASE("op table: ddpm_eps_loss", "[ops][diffusion]") { run_op_table(loss_rows()); }
TEST_CASE("op table: ddpm_eps_loss cpu vs cuda", "[ops][diffusion][cuda]") { run_op_table_cuda(loss_rows()); }

TEST_CASE("diffusion: ddpm_eps_loss by hand and its errors", "[diffusion]") {
  Tensor p = Tensor::from_vector({1, 2, 3, 0, 0, 0}, {2, 3});
  Tensor e = Tensor::from_vector({1, 2, 3, 1, -2, 2}, {2, 3});
  p.set_requires_grad();
  Tensor mse = ddpm_eps_loss(p, e);
  REQUIRE(mse.shape() == Shape{2});
  REQUIRE(mse.to_vector()[0] == 0.f);
  REQUIRE(mse.to_vector()[1] == Approx(3.0));  // (1 + 4 + 4) / 3
  backward(sum(mse));
  // dmse_1/dp = 2 (p − e) / 3
  require_close("grad", p.grad().to_vector(), std::vector<double>{0, 0, 0, -2.0 / 3, 4.0 / 3, -4.0 / 3}, 1e-7, 1e-6);
  REQUIRE_THROWS_WITH(ddpm_eps_loss(p, Tensor::zeros({2, 4})), Catch::Contains("(2, 3)") && Catch::Contains("(2, 4)"));
}

// ---------------------------------------------------------------------------------------------
// CPU vs CUDA for every kernel (skip without a GPU)

TEST_CASE("diffusion: q_sample, ancestral and DDIM steps, CPU vs CUDA", "[diffusion][cuda]") {
  if (!cuda_or_skip()) return;
  for (const char* variance : {"beta", "posterior"}) {
    INFO(variance);
    Schedule cpu(config("cosine", "vp", variance));
    Schedule gpu = cpu.to(Device::CUDA);
    REQUIRE(gpu.device() == Device::CUDA);
    const FloatTables ft(cpu);
    REQUIRE(as_double(gpu.sqrt_alpha_bar().to_vector()) == ft.sab);
    const Shape shape{13, 1, 5, 7};
    const int64_t B = shape[0];
    Tensor x0 = Generator(1).randn(shape), ep = Generator(2).randn(shape);
    std::vector<int32_t> tv = timesteps(B, 1, 1000, 3), tn((size_t)B);
    tv[2] = 1;
    for (int64_t b = 0; b < B; ++b) tn[(size_t)b] = tv[(size_t)b] / 3;
    std::vector<double> atol;
    for (int32_t tb : tv) atol.push_back(kDevAtol / ft.sab[(size_t)tb]);
    Tensor out[2][6];
    uint64_t offsets[2];
    for (int d = 0; d < 2; ++d) {
      const Device dev = d ? Device::CUDA : Device::CPU;
      const Schedule& s = d ? gpu : cpu;
      Tensor t = Tensor::from_indices(tv, {B}, dev), t_next = Tensor::from_indices(tn, {B}, dev);
      Generator gen(77);
      gen.uniform(Tensor::empty({1}).data(), 1, Device::CPU);
      out[d][0] = diffusion::q_sample(x0.to(dev), t, s, gen, &out[d][1]);
      out[d][2] = diffusion::ddpm_step(x0.to(dev), ep.to(dev), t, s, gen, &out[d][3]);
      out[d][4] = diffusion::ddim_step(x0.to(dev), ep.to(dev), t, t_next, s, &out[d][5]);
      offsets[d] = gen.offset();
    }
    REQUIRE(offsets[0] == offsets[1]);
    const char* names[6] = {"q_sample x_t", "q_sample eps", "ddpm_step x_{t-1}", "ddpm_step x0_pred",
                            "ddim_step x_{t'}", "ddim_step x0_pred"};
    for (int k = 0; k < 6; ++k) {
      REQUIRE(out[1][k].device() == Device::CUDA);
      const std::vector<double> want = as_double(out[0][k].to_vector());
      if (k == 3 || k == 5 || k == 4)  // divided by √ᾱ_t
        require_close_rows(std::string(names[k]) + " CUDA vs CPU", out[1][k].to_vector(), want, B, atol, kDevRtol);
      else
        require_close(std::string(names[k]) + " CUDA vs CPU", out[1][k].to_vector(), want, kDevAtol, kDevRtol);
    }
  }
}

TEST_CASE("diffusion: CUDA kernels write NaN for out-of-range timesteps", "[diffusion][cuda]") {
  if (!cuda_or_skip()) return;
  Schedule s(config("linear", "vp", "beta", 50), Device::CUDA);
  Generator gen(1);
  Tensor x = Tensor::zeros({2, 3}, Device::CUDA);
  Tensor t = Tensor::from_indices({51, 3}, {2}, Device::CUDA);
  std::vector<float> xt = diffusion::q_sample(x, t, s, gen).to_vector();
  REQUIRE(std::isnan(xt[0]));
  REQUIRE(std::isfinite(xt[3]));
  std::vector<float> xp = diffusion::ddpm_step(x, x, Tensor::from_indices({0, 3}, {2}, Device::CUDA), s, gen).to_vector();
  REQUIRE(std::isnan(xp[2]));
  REQUIRE(std::isfinite(xp[3]));
}
