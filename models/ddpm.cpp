// ddpm.cpp: the DDPM loss and samplers (equations in ddpm.h and docs/ddpm.md).
#include "models/ddpm.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/error.h"
#include "models/config_json.h"

namespace gt {

// ------------------------------------------------------------------------------- config
std::string DdpmConfig::to_json() const {
  nlohmann::ordered_json j;
  j["unet"] = nlohmann::ordered_json::parse(unet.to_json());
  j["schedule"] = nlohmann::ordered_json::parse(schedule.to_json());
  j["height"] = height;
  j["width"] = width;
  j["label_dropout"] = detail::shortest_decimal(label_dropout);
  return j.dump();
}

DdpmConfig DdpmConfig::from_json(const std::string& text) {
  const nlohmann::json j = detail::parse_config_object(text, "DdpmConfig");
  DdpmConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const detail::ConfigField f{"DdpmConfig", k, it.value()};
    if (k == "unet") c.unet = UNetConfig::from_json(it.value().dump());
    else if (k == "schedule") c.schedule = diffusion::ScheduleConfig::from_json(it.value().dump());
    else if (k == "height") c.height = f.integer();
    else if (k == "width") c.width = f.integer();
    else if (k == "label_dropout") c.label_dropout = (float)f.number();
    else GT_CHECK(false, "DdpmConfig: unknown key '" << k << "'");
  }
  c.validate();
  return c;
}

void DdpmConfig::validate() const {
  unet.validate();
  schedule.validate();
  GT_CHECK(height >= 2 && width >= 2 && height % 2 == 0 && width % 2 == 0,
           "DdpmConfig: image size must be even (the U-Net halves it once), got " << height << "x" << width);
  GT_CHECK(label_dropout >= 0.f && label_dropout < 1.f,
           "DdpmConfig: label_dropout must be in [0, 1), got " << label_dropout);
}

// ------------------------------------------------------------------------------- training
Ddpm::Ddpm(const DdpmConfig& config, Generator& init, Device device)
    : cfg_(config), device_(device), sched_(config.schedule, device) {
  cfg_.validate();
  net_ = std::make_shared<UNet>(cfg_.unet, init);
  if (device != Device::CPU) net_->to(device);
}

DdpmLoss Ddpm::loss(const Tensor& x0, const Tensor* labels, Generator& gen) const {
  check_defined("Ddpm::loss", x0, "x0");
  GT_CHECK(x0.dim() == 4 && x0.size(1) == cfg_.unet.in_channels && x0.size(2) == cfg_.height &&
               x0.size(3) == cfg_.width,
           "Ddpm::loss: x0 has shape " << x0.shape() << ", expected (B, " << cfg_.unet.in_channels << ", "
                                       << cfg_.height << ", " << cfg_.width << ")");
  GT_CHECK(x0.device() == device_, "Ddpm::loss: x0 is on " << x0.device() << " but the model is on " << device_);
  const bool cond = cfg_.unet.conditional();
  GT_CHECK(cond == (labels != nullptr && labels->defined()),
           (cond ? "Ddpm::loss: a conditional model needs labels" : "Ddpm::loss: labels given to an unconditional model"));
  const int64_t B = x0.size(0), T = sched_.T();

  // t ~ U{1..T}: uniforms u in (0, 1] (core/rng.h) mapped to ceil(u T), which is 1..T exactly.
  std::vector<float> u(B);
  gen.uniform(u.data(), B, Device::CPU);
  DdpmLoss out;
  out.t.resize(B);
  std::vector<float> tf(B);
  for (int64_t b = 0; b < B; ++b) {
    out.t[b] = (int32_t)std::clamp<int64_t>((int64_t)std::ceil((double)u[b] * T), 1, T);
    tf[b] = (float)out.t[b];
  }
  const Tensor t = Tensor::from_indices(out.t, {B}).to(device_);
  const Tensor t_float = Tensor::from_vector(tf, {B}).to(device_);

  Tensor y;
  if (cond) {  // label dropout: "no label" (index K) with probability label_dropout
    std::vector<int32_t> lab = labels->to(Device::CPU).to_vector_i32();
    GT_CHECK((int64_t)lab.size() == B, "Ddpm::loss: " << lab.size() << " labels for " << B << " images");
    gen.uniform(u.data(), B, Device::CPU);
    for (int64_t b = 0; b < B; ++b) {
      GT_CHECK(lab[b] >= 0 && lab[b] < cfg_.unet.num_classes,
               "Ddpm::loss: label " << lab[b] << " of image " << b << " is outside 0.." << cfg_.unet.num_classes - 1);
      if (u[b] <= cfg_.label_dropout) lab[b] = cfg_.unet.num_classes;
    }
    y = Tensor::from_indices(lab, {B}).to(device_);
  }

  Tensor eps;
  Tensor xt = diffusion::q_sample(x0, t, sched_, gen, &eps);
  Tensor eps_pred = net_->forward(xt, t_float, cond ? &y : nullptr);
  out.per_sample = ddpm_eps_loss(eps_pred, eps);
  out.loss = mean(out.per_sample);
  return out;
}

// ------------------------------------------------------------------------------- sampling
namespace {

// The labels a sampling batch of B feeds the network, made once per batch (on a GPU a host-to-device
// copy waits for the queue): undefined for an unconditional net; (B) of the label (or of the "no
// label" class) without guidance; (2B), label then "no label", with guidance.
Tensor sampling_labels(const UNet& net, int64_t B, int label, float w, Device dev) {
  const UNetConfig& c = net.config();
  if (!c.conditional()) return Tensor();
  const int32_t none = c.num_classes, y = label < 0 ? none : label;
  if (w == 0.f || label < 0) return Tensor::from_indices(std::vector<int32_t>(B, y), {B}).to(dev);
  std::vector<int32_t> lab(2 * B, y);
  std::fill(lab.begin() + B, lab.end(), none);
  return Tensor::from_indices(lab, {2 * B}).to(dev);
}

// ε̂ for a batch, with classifier-free guidance when the labels cover two halves (w != 0): both
// halves in one network call.
Tensor predict_eps(const UNet& net, const Tensor& x, float t, const Tensor& labels, float w) {
  const int64_t B = x.size(0);
  const Device dev = x.device();
  if (!labels.defined()) return net.forward(x, Tensor::full({B}, t, dev), nullptr);
  if (labels.size(0) == B) return net.forward(x, Tensor::full({B}, t, dev), &labels);
  Tensor both = net.forward(concat({x, x}, 0), Tensor::full({2 * B}, t, dev), &labels);
  Tensor e_cond = slice(both, 0, 0, B), e_uncond = slice(both, 0, B, 2 * B);
  return sub(mul(e_cond, 1.f + w), mul(e_uncond, w));  // (1 + w) ε(x, y) − w ε(x)
}

}  // namespace

Tensor ddpm_sample(const UNet& net, const diffusion::Schedule& sched, int64_t height, int64_t width,
                   const SampleOptions& o, Generator& gen, const SampleObserver& observe) {
  const int64_t T = sched.T();
  GT_CHECK(o.n >= 1, "sample: n must be >= 1, got " << o.n);
  GT_CHECK(o.batch >= 1, "sample: batch must be >= 1, got " << o.batch);
  GT_CHECK(o.sampler == "ddpm" || o.sampler == "ddim", "sample: sampler must be ddpm or ddim, got '" << o.sampler << "'");
  const UNetConfig& c = net.config();
  GT_CHECK(o.label < (c.conditional() ? c.num_classes : 0),
           "sample: label " << o.label << " but the model "
                            << (c.conditional() ? "has classes 0.." + std::to_string(c.num_classes - 1)
                                                : std::string("is unconditional (train with --cond)")));
  GT_CHECK(o.guidance == 0.f || (c.conditional() && o.label >= 0),
           "sample: guidance needs a conditional model and a label");
  GT_CHECK(std::isfinite(o.guidance) && o.guidance >= 0.f, "sample: guidance must be >= 0, got " << o.guidance);
  std::vector<int64_t> ts;  // the timesteps visited, descending; the walk ends at 0
  if (o.sampler == "ddpm") {
    GT_CHECK(o.steps == 0 || o.steps == T,
             "sample: the ancestral sampler takes all T = " << T << " steps (--steps " << o.steps
                                                            << "); use --sampler ddim for fewer");
    for (int64_t t = T; t >= 1; --t) ts.push_back(t);
  } else {
    GT_CHECK(sched.vp(), "sample: DDIM needs a variance-preserving schedule (this run's is VE)");
    const int64_t S = o.steps == 0 ? 50 : o.steps;
    GT_CHECK(S >= 1 && S <= T, "sample: ddim steps must be in 1.." << T << ", got " << S);
    for (int64_t i = S - 1; i >= 0; --i) {  // t_i = round(1 + (T − 1) i / (S − 1)), i = S−1 .. 0
      const int64_t t = S == 1 ? T : (int64_t)std::llround(1 + (double)(T - 1) * i / (double)(S - 1));
      if (ts.empty() || t < ts.back()) ts.push_back(t);
    }
  }

  NoGradGuard no_grad;
  const Device dev = sched.device();
  const int64_t C = c.in_channels;
  std::vector<Tensor> batches;
  for (int64_t first = 0; first < o.n; first += o.batch) {
    const int64_t B = std::min(o.batch, o.n - first);
    // Every step's timestep tensors, made once: row i is t_i repeated B times (row ts.size() is
    // t = 0, DDIM's last target). On a GPU this is one host-to-device copy per batch instead of one
    // (or two) per step, each of which would wait for the queue.
    std::vector<int32_t> tv;
    tv.reserve((ts.size() + 1) * (size_t)B);
    for (size_t i = 0; i <= ts.size(); ++i) tv.insert(tv.end(), (size_t)B, i < ts.size() ? (int32_t)ts[i] : 0);
    const Tensor t_rows = Tensor::from_indices(tv, {(int64_t)ts.size() + 1, B}).to(dev);
    const Tensor labels = sampling_labels(net, B, o.label, o.guidance, dev);
    Tensor x = gen.randn({B, C, height, width}, dev);  // x_T ~ N(0, I)
    for (size_t i = 0; i < ts.size(); ++i) {
      const int64_t t = ts[i], t_next = i + 1 < ts.size() ? ts[i + 1] : 0;
      Tensor eps = predict_eps(net, x, (float)t, labels, o.guidance);
      const Tensor tt = t_rows.row((int64_t)i);
      Tensor x0_pred;
      if (o.sampler == "ddpm") {
        x = diffusion::ddpm_step(x, eps, tt, sched, gen, &x0_pred);
      } else {
        x = diffusion::ddim_step(x, eps, tt, t_rows.row((int64_t)i + 1), sched, &x0_pred);
      }
      if (observe) observe(t_next, x, x0_pred, first);
    }
    batches.push_back(x);
  }
  return batches.size() == 1 ? batches[0] : concat(batches, 0);
}

}  // namespace gt
