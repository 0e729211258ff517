// diffusion.cpp: the DDPM noise schedules, computed once in double from the course's recursions,
// and the tensor wrappers that dispatch the fused kernels of kernels/diffusion.h (equations in
// diffusion.h).
#include "models/diffusion.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/dispatch.h"
#include "core/error.h"
#include "models/config_json.h"

namespace gt::diffusion {

// ---------------------------------------------------------------------------------------------
// ScheduleConfig

std::string ScheduleConfig::to_json() const {
  nlohmann::ordered_json j;
  j["schedule"] = schedule;
  j["T"] = T;
  j["form"] = form;
  j["variance"] = variance;
  j["beta_start"] = beta_start;  // doubles: nlohmann writes the shortest round-trip form
  j["beta_end"] = beta_end;
  j["cosine_s"] = cosine_s;
  j["max_beta"] = max_beta;
  return j.dump();
}

ScheduleConfig ScheduleConfig::from_json(const std::string& text) {
  const nlohmann::json j = detail::parse_config_object(text, "ScheduleConfig");
  ScheduleConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const detail::ConfigField f{"ScheduleConfig", k, it.value()};
    if (k == "schedule") c.schedule = f.string();
    else if (k == "T") c.T = f.integer();
    else if (k == "form") c.form = f.string();
    else if (k == "variance") c.variance = f.string();
    else if (k == "beta_start") c.beta_start = f.number();
    else if (k == "beta_end") c.beta_end = f.number();
    else if (k == "cosine_s") c.cosine_s = f.number();
    else if (k == "max_beta") c.max_beta = f.number();
    else {
      GT_FAIL("ScheduleConfig: unknown key '" << k << "' (known: schedule, T, form, variance, beta_start, "
                                                 "beta_end, cosine_s, max_beta)");
    }
  }
  c.validate();
  return c;
}

void ScheduleConfig::validate() const {
  GT_CHECK(schedule == "linear" || schedule == "cosine",
           "ScheduleConfig: schedule must be 'linear' or 'cosine', got '" << schedule << "'");
  // T >= 2: the linear schedule divides by T − 1. The upper bound keeps t an int32 with room.
  GT_CHECK(T >= 2 && T <= 100000000, "ScheduleConfig: T must be in 2..10^8, got " << T);
  GT_CHECK(form == "vp" || form == "ve", "ScheduleConfig: form must be 'vp' or 've', got '" << form << "'");
  GT_CHECK(variance == "beta" || variance == "posterior",
           "ScheduleConfig: variance must be 'beta' or 'posterior', got '" << variance << "'");
  // VP needs 0 < β_t < 1 (α_t = 1 − β_t > 0, β̄_t > 0); VE only β_t > 0.
  const double beta_max = form == "vp" ? 1.0 : INFINITY;
  if (schedule == "linear") {
    GT_CHECK(std::isfinite(beta_start) && beta_start > 0 && beta_start < beta_max,
             "ScheduleConfig: beta_start must be in (0, " << beta_max << ") for form '" << form << "', got "
                                                          << beta_start);
    GT_CHECK(std::isfinite(beta_end) && beta_end > 0 && beta_end < beta_max,
             "ScheduleConfig: beta_end must be in (0, " << beta_max << ") for form '" << form << "', got "
                                                        << beta_end);
  } else {
    GT_CHECK(std::isfinite(cosine_s) && cosine_s > 0, "ScheduleConfig: cosine_s must be > 0, got " << cosine_s);
    GT_CHECK(max_beta > 0 && max_beta < 1, "ScheduleConfig: max_beta must be in (0, 1), got " << max_beta);
  }
}

// ---------------------------------------------------------------------------------------------
// Schedule

Schedule::Schedule(const ScheduleConfig& config, Device device) : cfg_(config), device_(device) {
  cfg_.validate();
  const int64_t T = cfg_.T;
  const size_t n = (size_t)T + 1;
  beta_.assign(n, 0.0);
  if (cfg_.schedule == "linear") {
    for (int64_t t = 1; t <= T; ++t) {
      const double u = (double)(t - 1) / (double)(T - 1);
      beta_[(size_t)t] = (1 - u) * cfg_.beta_start + u * cfg_.beta_end;
    }
  } else {
    const double s = cfg_.cosine_s, half_pi = 0.5 * M_PI;
    auto f = [&](int64_t t) {
      const double c = std::cos(((double)t / (double)T + s) / (1 + s) * half_pi);
      return c * c;
    };
    for (int64_t t = 1; t <= T; ++t) beta_[(size_t)t] = std::min(1 - f(t) / f(t - 1), cfg_.max_beta);
  }
  alpha_.assign(n, 1.0);
  alpha_bar_.assign(n, 1.0);
  beta_bar_.assign(n, 0.0);
  sigma2_.assign(n, 0.0);
  for (size_t t = 1; t < n; ++t) {
    const double b = beta_[t];
    GT_CHECK(std::isfinite(b) && b > 0 && (cfg_.form == "ve" || b < 1),
             "Schedule: beta_" << t << " = " << b << " is outside (0, 1) for a " << cfg_.schedule << " "
                               << cfg_.form << " schedule");
    alpha_[t] = cfg_.form == "vp" ? 1 - b : 1.0;
    alpha_bar_[t] = alpha_bar_[t - 1] * alpha_[t];
    beta_bar_[t] = alpha_[t] * beta_bar_[t - 1] + b;
    sigma2_[t] = cfg_.variance == "beta" ? b : b * beta_bar_[t - 1] / beta_bar_[t];
  }
  upload();
}

void Schedule::upload() {
  const size_t n = beta_.size();
  std::vector<float> sab(n), sbb(n), isa(n), coef(n), sig(n);
  for (size_t t = 0; t < n; ++t) {
    sab[t] = (float)std::sqrt(alpha_bar_[t]);
    sbb[t] = (float)std::sqrt(beta_bar_[t]);
    isa[t] = (float)(1 / std::sqrt(alpha_[t]));
    coef[t] = t == 0 ? 0.f : (float)(beta_[t] / std::sqrt(beta_bar_[t]));
    sig[t] = (float)std::sqrt(sigma2_[t]);
  }
  const Shape shape{(int64_t)n};
  sqrt_alpha_bar_ = Tensor::from_vector(sab, shape, device_);
  sqrt_beta_bar_ = Tensor::from_vector(sbb, shape, device_);
  inv_sqrt_alpha_ = Tensor::from_vector(isa, shape, device_);
  eps_coef_ = Tensor::from_vector(coef, shape, device_);
  sigma_ = Tensor::from_vector(sig, shape, device_);
}

Schedule Schedule::to(Device device) const {
  Schedule s = *this;
  if (device != device_) {
    s.device_ = device;
    s.upload();
  }
  return s;
}

DiffusionTables Schedule::tables() const {
  DiffusionTables tab;
  tab.sqrt_alpha_bar = sqrt_alpha_bar_.data();
  tab.sqrt_beta_bar = sqrt_beta_bar_.data();
  tab.inv_sqrt_alpha = inv_sqrt_alpha_.data();
  tab.eps_coef = eps_coef_.data();
  tab.sigma = sigma_.data();
  tab.T = cfg_.T;
  return tab;
}

// ---------------------------------------------------------------------------------------------
// Kernel wrappers

namespace {
// x (B, ...) float32 on the schedule's device; returns D = numel / B.
int64_t check_batch(const char* op, const Tensor& x, const char* what, const Schedule& sched) {
  check_defined(op, x, what);
  check_dtype_f32(op, x);
  GT_CHECK(x.dim() >= 1 && x.size(0) >= 1 && x.numel() >= 1,
           op << ": " << what << " must be (B, ...) with B >= 1 and at least one element per sample, got "
              << x.shape());
  GT_CHECK(x.device() == sched.device(), op << ": " << what << " is on " << x.device() << " but the schedule's tables are on "
                                            << sched.device() << " (use Schedule::to)");
  return x.numel() / x.size(0);
}

// t (B) int32 on x's device; on the CPU every value in lo..hi (hi per sample when `upper` is given).
void check_timesteps(const char* op, const Tensor& t, const char* what, const Tensor& x, int64_t lo, int64_t hi,
                     const Tensor* upper = nullptr) {
  check_defined(op, t, what);
  GT_CHECK(t.dtype() == DType::I32, op << ": " << what << " must be int32 timesteps, got " << t.dtype());
  GT_CHECK(t.shape() == Shape{x.size(0)},
           op << ": " << what << " " << t.shape() << " must be (B) = (" << x.size(0) << ") for x " << x.shape());
  check_same_device(op, x, t);
  if (t.device() != Device::CPU) return;  // reading back would synchronise: the kernel writes NaN instead
  const int32_t* v = t.data_i32();
  const int32_t* u = upper ? upper->data_i32() : nullptr;
  for (int64_t b = 0; b < t.numel(); ++b) {
    const int64_t h = u ? std::min<int64_t>(hi, (int64_t)u[b] - 1) : hi;
    GT_CHECK(v[b] >= lo && v[b] <= h,
             op << ": " << what << "[" << b << "] = " << v[b] << " is outside " << lo << ".." << h
                << (u ? " (t_next must be below t)" : ""));
  }
}

// The next n normals of gen's stream, as Generator::normal would take them: round the offset up to
// a Box-Muller pair, then advance by an even count. Returns the first element's offset.
uint64_t take_normals(Generator& gen, int64_t n) {
  const uint64_t offset = (gen.offset() + 1) & ~uint64_t(1);
  gen.set_offset(offset + (uint64_t)((n + 1) & ~int64_t(1)));
  return offset;
}
}  // namespace

Tensor q_sample(const Tensor& x0, const Tensor& t, const Schedule& sched, Generator& gen, Tensor* eps_out) {
  const char* op = "q_sample";
  const int64_t D = check_batch(op, x0, "x0", sched), B = x0.size(0);
  check_timesteps(op, t, "t", x0, 0, sched.T());
  Tensor xt = Tensor::empty(x0.shape(), x0.device());
  Tensor eps = Tensor::empty(x0.shape(), x0.device());
  const uint64_t offset = take_normals(gen, B * D);
  const DiffusionTables tab = sched.tables();
  GT_DISPATCH(x0.device(),
              q_sample_cpu(xt.data(), eps.data(), x0.data(), t.data_i32(), tab, B, D, gen.seed(), offset),
              q_sample_cuda(xt.data(), eps.data(), x0.data(), t.data_i32(), tab, B, D, gen.seed(), offset));
  if (eps_out) *eps_out = eps;
  return xt;
}

Tensor ddpm_step(const Tensor& xt, const Tensor& eps_pred, const Tensor& t, const Schedule& sched, Generator& gen,
                 Tensor* x0_pred) {
  const char* op = "ddpm_step";
  const int64_t D = check_batch(op, xt, "xt", sched), B = xt.size(0);
  check_batch(op, eps_pred, "eps_pred", sched);
  check_same_shape(op, xt, eps_pred);
  check_timesteps(op, t, "t", xt, 1, sched.T());
  Tensor x_prev = Tensor::empty(xt.shape(), xt.device());
  float* x0p = nullptr;
  if (x0_pred) {
    *x0_pred = Tensor::empty(xt.shape(), xt.device());
    x0p = x0_pred->data();
  }
  const uint64_t offset = take_normals(gen, B * D);
  const DiffusionTables tab = sched.tables();
  GT_DISPATCH(xt.device(),
              ddpm_step_cpu(x_prev.data(), x0p, xt.data(), eps_pred.data(), t.data_i32(), tab, B, D, gen.seed(),
                            offset),
              ddpm_step_cuda(x_prev.data(), x0p, xt.data(), eps_pred.data(), t.data_i32(), tab, B, D, gen.seed(),
                             offset));
  return x_prev;
}

Tensor ddim_step(const Tensor& xt, const Tensor& eps_pred, const Tensor& t, const Tensor& t_next,
                 const Schedule& sched, Tensor* x0_pred) {
  const char* op = "ddim_step";
  GT_CHECK(sched.vp(), op << ": DDIM needs a variance-preserving schedule (√(1 − ᾱ) = √β̄), got form '"
                          << sched.config().form << "'");
  const int64_t D = check_batch(op, xt, "xt", sched), B = xt.size(0);
  check_batch(op, eps_pred, "eps_pred", sched);
  check_same_shape(op, xt, eps_pred);
  check_timesteps(op, t, "t", xt, 1, sched.T());
  check_timesteps(op, t_next, "t_next", xt, 0, sched.T() - 1, &t);
  Tensor x_next = Tensor::empty(xt.shape(), xt.device());
  float* x0p = nullptr;
  if (x0_pred) {
    *x0_pred = Tensor::empty(xt.shape(), xt.device());
    x0p = x0_pred->data();
  }
  const DiffusionTables tab = sched.tables();
  GT_DISPATCH(xt.device(),
              ddim_step_cpu(x_next.data(), x0p, xt.data(), eps_pred.data(), t.data_i32(), t_next.data_i32(), tab, B, D),
              ddim_step_cuda(x_next.data(), x0p, xt.data(), eps_pred.data(), t.data_i32(), t_next.data_i32(), tab, B,
                             D));
  return x_next;
}

}  // namespace gt::diffusion
