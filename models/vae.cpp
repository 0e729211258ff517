// vae.cpp: the variational autoencoder of models/vae.h (Kingma & Welling 2014) — architectures,
// loss, sampling, and the test-set evaluation with the importance-weighted bound (Burda et al. 2015).
//
// Parameter names (D = height*width input pixels, L = latent, C = num_classes, 0 when unconditional;
// every Linear is "<name>.weight" (out, in) and "<name>.bias" (out)):
//
//   MLP, one hidden layer H (the default 784-400-20) — exactly pytorch/examples' vae/main.py:
//     fc1  (D+C -> H)   fc21 (H -> L, mu)   fc22 (H -> L, logvar)   fc3 (L+C -> H)   fc4 (H -> D)
//     with C = 0 this is 784*400+400 + 2*(400*20+20) + 20*400+400 + 400*784+784 = 652,824 numbers.
//   MLP, hidden = {H1, ..., Hn}, n >= 2 (the decoder mirrors the encoder):
//     enc1 (D+C -> H1), enc2 (H1 -> H2), ..., encn (H(n-1) -> Hn),
//     fc_mu (Hn -> L), fc_logvar (Hn -> L),
//     dec1 (L+C -> Hn), dec2 (Hn -> H(n-1)), ..., decn (H2 -> H1), dec_out (H1 -> D)
//   conv (one channel, H and W divisible by 4; hidden = {Hd}; h = H/4, w = W/4, 7x7 for 28x28):
//     conv1    Conv2d(1, 32, 4, stride 2, pad 1)            H x W -> H/2 x W/2
//     conv2    Conv2d(32, 64, 4, stride 2, pad 1)           -> h x w, flattened to 64*h*w
//     fc1      (64*h*w + C -> Hd)      fc_mu (Hd -> L)      fc_logvar (Hd -> L)
//     fc3      (L + C -> Hd)           fc4 (Hd -> 64*h*w), reshaped to (B, 64, h, w)
//     deconv1  ConvTranspose2d(64, 32, 4, stride 2, pad 1)  -> H/2 x W/2
//     deconv2  ConvTranspose2d(32, 1, 4, stride 2, pad 1)   -> H x W, flattened to D
//   Every hidden layer is followed by ReLU (the conv decoder's fc3, fc4 and deconv1 too).
//   Gaussian decoder with learn_variance: one more parameter, "dec_logvar" (D), initialised to
//     decoder_logvar (listed first by named_parameters(): a module's own parameters precede its
//     children's).
//
// Decoder outputs: Bernoulli -> logits (no sigmoid: bernoulli_nll works from the logits, stably).
// Gaussian -> mean = sigmoid(last layer), so the mean stays in the pixel range [0, 1] like the data;
// to_pixels() then returns it unchanged (the "clamp" of vae.h is a no-op on a sigmoid).
//
// Conditional VAE: the label's one-hot row (a row of a constant C x C identity picked with
// index_select — nothing recorded on the tape) is concatenated to the encoder input (after the
// conv stack for arch "conv") and to z. Labels on the CPU are range-checked (the error names the
// label); labels on CUDA are not (checking them would cost a device->host sync per step): an
// out-of-range label there yields a NaN one-hot row (the gather kernel's marker), so a NaN loss.
// An unconditional VAE ignores any labels it is passed (a training loop may always pass the y of
// its minibatch).
//
// evaluate() reports the true -ELBO = recon + KL (beta = 1) whatever the training beta was, so
// beta-VAEs are compared on the same bound. Its importance-weighted bound evaluates the K samples
// of a batch as one stacked (K*B)-row pass (in chunks of at most kMaxIwRows rows).
#include "models/vae.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "models/config_json.h"

namespace gt {

// ---------------------------------------------------------------------------------------------
// VaeConfig


std::string VaeConfig::to_json() const {
  nlohmann::ordered_json j;
  j["arch"] = arch;
  j["height"] = height;
  j["width"] = width;
  j["hidden"] = hidden;
  j["latent"] = latent;
  j["decoder"] = decoder;
  j["learn_variance"] = learn_variance;
  j["decoder_logvar"] = detail::shortest_decimal(decoder_logvar);
  j["beta"] = detail::shortest_decimal(beta);
  j["num_classes"] = num_classes;
  return j.dump();
}

VaeConfig VaeConfig::from_json(const std::string& text) {
  const nlohmann::json j = detail::parse_config_object(text, "VaeConfig");
  VaeConfig c;  // keys left out keep their defaults
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const detail::ConfigField f{"VaeConfig", k, it.value()};
    if (k == "arch") c.arch = f.string();
    else if (k == "height") c.height = f.integer();
    else if (k == "width") c.width = f.integer();
    else if (k == "latent") c.latent = f.integer();
    else if (k == "decoder") c.decoder = f.string();
    else if (k == "decoder_logvar") c.decoder_logvar = (float)f.number();
    else if (k == "beta") c.beta = (float)f.number();
    else if (k == "num_classes") {
      const int64_t n = f.integer();
      GT_CHECK(n >= 0 && n <= (1 << 30), "VaeConfig: 'num_classes' must be in 0..2^30, got " << n);
      c.num_classes = (int)n;
    } else if (k == "learn_variance") c.learn_variance = f.boolean();
    else if (k == "hidden") c.hidden = f.integers();
    else {
      GT_FAIL("VaeConfig: unknown key '" << k << "' (known: arch, height, width, hidden, latent, decoder, "
                                            "learn_variance, decoder_logvar, beta, num_classes)");
    }
  }
  c.validate();
  return c;
}

void VaeConfig::validate() const {
  GT_CHECK(arch == "mlp" || arch == "conv", "VaeConfig: arch must be 'mlp' or 'conv', got '" << arch << "'");
  GT_CHECK(height >= 1 && width >= 1,
           "VaeConfig: height and width must be >= 1, got height " << height << ", width " << width);
  GT_CHECK(!hidden.empty(), "VaeConfig: hidden must list at least one width, got none");
  for (size_t i = 0; i < hidden.size(); ++i)
    GT_CHECK(hidden[i] >= 1, "VaeConfig: hidden[" << i << "] must be >= 1, got " << hidden[i]);
  if (arch == "conv") {
    GT_CHECK(height % 4 == 0 && width % 4 == 0,
             "VaeConfig: arch 'conv' needs height and width divisible by 4 (two stride-2 convolutions), got height "
                 << height << ", width " << width);
    GT_CHECK(hidden.size() == 1, "VaeConfig: arch 'conv' takes exactly one hidden width, got hidden of size "
                                     << hidden.size());
  }
  GT_CHECK(latent >= 1, "VaeConfig: latent must be >= 1, got " << latent);
  GT_CHECK(decoder == "bernoulli" || decoder == "gaussian",
           "VaeConfig: decoder must be 'bernoulli' or 'gaussian', got '" << decoder << "'");
  GT_CHECK(!learn_variance || decoder == "gaussian",
           "VaeConfig: learn_variance is only meaningful with decoder 'gaussian', got decoder '" << decoder << "'");
  GT_CHECK(std::isfinite(decoder_logvar), "VaeConfig: decoder_logvar must be finite, got " << decoder_logvar);
  GT_CHECK(std::isfinite(beta) && beta >= 0.f, "VaeConfig: beta must be finite and >= 0, got " << beta);
  GT_CHECK(num_classes >= 0, "VaeConfig: num_classes must be >= 0, got " << num_classes);
}

// ---------------------------------------------------------------------------------------------
// Vae

struct Vae::Impl {
  // MLP and conv alike: encoder hidden Linears, the two heads, decoder hidden Linears, output Linear.
  std::vector<std::shared_ptr<nn::Linear>> enc, dec;
  std::shared_ptr<nn::Linear> fc_mu, fc_logvar, out;
  // conv only
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::ConvTranspose2d> deconv1, deconv2;
  Tensor dec_logvar;  // learned Gaussian log s^2 (D), or undefined
  // Constants built once per device (no host->device copy per step): the fixed Gaussian log s^2
  // (shape ()) and the C x C identity the one-hot rows come from.
  mutable std::map<Device, Tensor> fixed_logvar, eye;
};

namespace {
std::string layer_name(const char* prefix, size_t i) { return prefix + std::to_string(i + 1); }
}  // namespace

Vae::Vae(const VaeConfig& config, Generator& init) : cfg_(config), impl_(std::make_shared<Impl>()) {
  cfg_.validate();
  Impl& m = *impl_;
  const int64_t D = cfg_.input_dim(), L = cfg_.latent, C = cfg_.num_classes;
  auto linear = [&](const std::string& name, int64_t in, int64_t out) {
    return register_module(name, std::make_shared<nn::Linear>(in, out, init));
  };
  if (cfg_.decoder == "gaussian" && cfg_.learn_variance)
    m.dec_logvar = register_parameter("dec_logvar", Tensor::full({D}, cfg_.decoder_logvar));

  if (cfg_.arch == "mlp") {
    const size_t n = cfg_.hidden.size();
    const bool torch_names = n == 1;  // pytorch/examples' fc1/fc21/fc22/fc3/fc4
    int64_t in = D + C;
    for (size_t i = 0; i < n; ++i) {
      m.enc.push_back(linear(torch_names ? "fc1" : layer_name("enc", i), in, cfg_.hidden[i]));
      in = cfg_.hidden[i];
    }
    m.fc_mu = linear(torch_names ? "fc21" : "fc_mu", in, L);
    m.fc_logvar = linear(torch_names ? "fc22" : "fc_logvar", in, L);
    in = L + C;
    for (size_t i = 0; i < n; ++i) {
      const int64_t width = cfg_.hidden[n - 1 - i];
      m.dec.push_back(linear(torch_names ? "fc3" : layer_name("dec", i), in, width));
      in = width;
    }
    m.out = linear(torch_names ? "fc4" : "dec_out", in, D);
  } else {
    const int64_t hd = cfg_.hidden[0], flat = 64 * (cfg_.height / 4) * (cfg_.width / 4);
    m.conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, 32, 4, init, 2, 1));
    m.conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(32, 64, 4, init, 2, 1));
    m.enc.push_back(linear("fc1", flat + C, hd));
    m.fc_mu = linear("fc_mu", hd, L);
    m.fc_logvar = linear("fc_logvar", hd, L);
    m.dec.push_back(linear("fc3", L + C, hd));
    m.out = linear("fc4", hd, flat);
    m.deconv1 = register_module("deconv1", std::make_shared<nn::ConvTranspose2d>(64, 32, 4, init, 2, 1));
    m.deconv2 = register_module("deconv2", std::make_shared<nn::ConvTranspose2d>(32, 1, 4, init, 2, 1));
  }
}

namespace {
// The one-hot rows of `labels` (B) as a (B, C) float tensor on the labels' device.
Tensor one_hot(const Tensor& labels, int64_t B, int C, std::map<Device, Tensor>& eye_cache, const char* where) {
  GT_CHECK(labels.defined(), where << ": this VAE is conditional (num_classes " << C
                                   << "): labels (B) int32 are required");
  GT_CHECK(labels.dtype() == DType::I32 && labels.dim() == 1 && labels.size(0) == B,
           where << ": labels must be int32 of shape (" << B << "), got " << labels.str());
  if (labels.device() == Device::CPU) {
    const int32_t* y = labels.data_i32();
    for (int64_t i = 0; i < B; ++i)
      GT_CHECK(y[i] >= 0 && y[i] < C, where << ": label " << y[i] << " (row " << i << ") is out of range 0.."
                                            << C - 1 << " (num_classes " << C << ")");
  }
  Tensor& eye = eye_cache[labels.device()];
  if (!eye.defined()) {
    std::vector<float> v((size_t)C * (size_t)C, 0.f);
    for (int i = 0; i < C; ++i) v[(size_t)i * (size_t)C + (size_t)i] = 1.f;
    eye = Tensor::from_vector(v, {C, C}, labels.device());
  }
  return index_select(eye, labels);
}
}  // namespace

std::pair<Tensor, Tensor> Vae::encode(const Tensor& x, const Tensor& labels) const {
  const Impl& m = *impl_;
  GT_CHECK(x.defined() && x.dim() == 2 && x.size(1) == cfg_.input_dim(),
           "Vae::encode: x must be (B, " << cfg_.input_dim() << ") for " << cfg_.height << "x" << cfg_.width
                                         << " images, got " << (x.defined() ? x.shape().str() : "undefined"));
  const int64_t B = x.size(0);
  Tensor h = x;
  if (cfg_.arch == "conv") {
    h = reshape(x, {B, 1, cfg_.height, cfg_.width});
    h = relu(m.conv1->forward(h));
    h = relu(m.conv2->forward(h));
    h = reshape(h, {B, -1});
  }
  if (cfg_.conditional()) h = concat({h, one_hot(labels, B, cfg_.num_classes, m.eye, "Vae::encode")}, 1);
  for (const auto& layer : m.enc) h = layer->forward(h, LinearAct::Relu);
  return {m.fc_mu->forward(h), m.fc_logvar->forward(h)};
}

Tensor Vae::decode(const Tensor& z, const Tensor& labels) const {
  const Impl& m = *impl_;
  GT_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg_.latent,
           "Vae::decode: z must be (B, " << cfg_.latent << "), got " << (z.defined() ? z.shape().str() : "undefined"));
  const int64_t B = z.size(0);
  Tensor h = z;
  if (cfg_.conditional()) h = concat({h, one_hot(labels, B, cfg_.num_classes, m.eye, "Vae::decode")}, 1);
  for (const auto& layer : m.dec) h = layer->forward(h, LinearAct::Relu);
  Tensor out = m.out->forward(h);
  if (cfg_.arch == "conv") {
    h = reshape(relu(out), {B, 64, cfg_.height / 4, cfg_.width / 4});
    h = relu(m.deconv1->forward(h));
    out = reshape(m.deconv2->forward(h), {B, cfg_.input_dim()});
  }
  return cfg_.decoder == "gaussian" ? sigmoid(out) : out;
}

Tensor Vae::decoder_nll(const Tensor& out, const Tensor& x) const {
  if (cfg_.decoder == "bernoulli") return bernoulli_nll(out, x);
  const Impl& m = *impl_;
  if (m.dec_logvar.defined()) return gaussian_nll(out, x, m.dec_logvar);
  check_defined("Vae::decoder_nll", out, "the decoder output");
  Tensor& lv = m.fixed_logvar[out.device()];
  if (!lv.defined()) lv = Tensor::scalar(cfg_.decoder_logvar, out.device());
  return gaussian_nll(out, x, lv);
}

Tensor Vae::to_pixels(const Tensor& out) const {
  // Gaussian: the mean is already a sigmoid, inside [0, 1].
  return cfg_.decoder == "bernoulli" ? sigmoid(out) : out;
}

VaeLoss Vae::loss(const Tensor& x, const Tensor& labels, Generator& gen) const {
  auto [mu, logvar] = encode(x, labels);
  Tensor z = reparameterize(mu, logvar, gen);
  Tensor recon = decoder_nll(decode(z, labels), x);
  Tensor kl = kl_normal(mu, logvar);
  Tensor total = cfg_.beta == 1.f ? add(recon, kl) : add(recon, mul(kl, cfg_.beta));
  return {mean(total), recon, kl};
}

Tensor Vae::sample(int64_t n, const Tensor& labels, Generator& gen) const {
  GT_CHECK(n >= 1, "Vae::sample: n must be >= 1, got " << n);
  NoGradGuard no_grad;
  Tensor z = gen.randn({n, cfg_.latent}, device());
  return to_pixels(decode(z, labels));
}

Tensor Vae::reconstruct(const Tensor& x, const Tensor& labels) const {
  NoGradGuard no_grad;
  return to_pixels(decode(encode(x, labels).first, labels));
}

// ---------------------------------------------------------------------------------------------
// evaluate

namespace {
// The importance-weighted bound evaluates K samples of a batch as one (k*B)-row pass; at most this
// many rows at once (bounds the memory of the decoder output: 8192 x 784 floats = 25 MB).
constexpr int64_t kMaxIwRows = 8192;

// log w_k(b) for k in [k0, k0 + kc): rows k*B + b of a (kc*B) pass, returned as (kc, B).
//   log w = log p(x|z) + log p(z) - log q(z|x)
//         = -nll(x|z) + sum_j (-1/2 z_j^2 - 1/2 log 2pi) - sum_j (-1/2 eps_j^2 - 1/2 lv_j - 1/2 log 2pi)
//         = -nll(x|z) + 1/2 sum_j (eps_j^2 + lv_j - z_j^2)           (the log 2pi terms cancel)
Tensor iw_log_weights(const Vae& vae, const Tensor& x, const Tensor& labels, const Tensor& mu, const Tensor& lv,
                      int64_t kc, Generator& gen) {
  const int64_t B = x.size(0);
  std::vector<int32_t> rows((size_t)(kc * B));
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t b = 0; b < B; ++b) rows[(size_t)(k * B + b)] = (int32_t)b;
  Tensor idx = Tensor::from_indices(rows, {kc * B}, x.device());
  Tensor mu_r = index_select(mu, idx), lv_r = index_select(lv, idx), x_r = index_select(x, idx);
  Tensor y_r;
  if (vae.config().conditional()) {
    std::vector<int32_t> y = labels.to_vector_i32(), yr((size_t)(kc * B));
    for (size_t r = 0; r < yr.size(); ++r) yr[r] = y[(size_t)rows[r]];
    y_r = Tensor::from_indices(yr, {kc * B}, x.device());
  }
  Tensor eps;
  Tensor z = reparameterize(mu_r, lv_r, gen, &eps);
  Tensor nll = vae.decoder_nll(vae.decode(z, y_r), x_r);
  Tensor log_ratio = mul(sum(sub(add(square(eps), lv_r), square(z)), 1), 0.5f);
  return reshape(sub(log_ratio, nll), {kc, B});
}
}  // namespace

VaeEval evaluate(const Vae& vae, const Dataset& data, int64_t batch, int iw_samples, Generator& gen, Device device) {
  const VaeConfig& cfg = vae.config();
  GT_CHECK(data.dim() == cfg.input_dim(), "evaluate: data set " << data.name << " has " << data.height << "x"
                                                                << data.width << " images, the VAE expects "
                                                                << cfg.height << "x" << cfg.width);
  GT_CHECK(iw_samples >= 0, "evaluate: iw_samples must be >= 0, got " << iw_samples);
  GT_CHECK(vae.device() == device, "evaluate: the VAE's parameters are on " << vae.device() << ", the data is asked on "
                                                                           << device);
  NoGradGuard no_grad;
  const int64_t L = cfg.latent;
  VaeEval ev;
  ev.iw_samples = iw_samples;
  ev.kl_per_dim.assign((size_t)L, 0.0);
  std::vector<double> mu_sum((size_t)L, 0.0);
  std::vector<float> all_mu;  // (N, L), for the two-pass variance
  all_mu.reserve((size_t)(data.size() * L));
  double recon_sum = 0, kl_sum = 0, iw_sum = 0;

  Batcher batches(data, batch, /*seed=*/0, device, /*shuffle=*/false);
  for (batches.start_epoch(0); batches.next();) {
    const Tensor& x = batches.x();
    const Tensor labels = cfg.conditional() ? batches.y() : Tensor();
    const int64_t B = x.size(0);
    auto [mu, lv] = vae.encode(x, labels);
    Tensor z = reparameterize(mu, lv, gen);
    Tensor recon = vae.decoder_nll(vae.decode(z, labels), x);
    Tensor kl = kl_normal(mu, lv);
    for (float r : recon.to_vector()) recon_sum += r;
    for (float k : kl.to_vector()) kl_sum += k;
    const std::vector<float> hmu = mu.to_vector(), hlv = lv.to_vector();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < L; ++j) {
        const double m = hmu[(size_t)(b * L + j)], v = hlv[(size_t)(b * L + j)];
        ev.kl_per_dim[(size_t)j] += 0.5 * (-v - 1.0 + std::exp(v) + m * m);
        mu_sum[(size_t)j] += m;
      }
    all_mu.insert(all_mu.end(), hmu.begin(), hmu.end());

    if (iw_samples > 0) {
      const int64_t K = iw_samples, kc_max = std::max<int64_t>(1, std::min<int64_t>(K, kMaxIwRows / B));
      std::vector<Tensor> parts;
      for (int64_t k0 = 0; k0 < K; k0 += kc_max)
        parts.push_back(iw_log_weights(vae, x, labels, mu, lv, std::min(kc_max, K - k0), gen));
      Tensor logw = parts.size() == 1 ? parts[0] : concat(parts, 0);  // (K, B)
      // log p(x) >= log (1/K) sum_k w_k = logsumexp_k log w_k - log K
      for (float s : logsumexp(logw, 0).to_vector()) iw_sum += (double)s - std::log((double)K);
    }
    ev.n += B;
  }
  const double n = (double)ev.n;
  ev.recon = recon_sum / n;
  ev.kl = kl_sum / n;
  ev.neg_elbo = ev.recon + ev.kl;
  if (iw_samples > 0) ev.nll_iw = -iw_sum / n;
  ev.activity.assign((size_t)L, 0.0);
  for (int64_t j = 0; j < L; ++j) {
    ev.kl_per_dim[(size_t)j] /= n;
    const double mean_j = mu_sum[(size_t)j] / n;
    double var = 0;  // population variance, two passes (no cancellation of E[mu^2] - E[mu]^2)
    for (int64_t i = 0; i < ev.n; ++i) {
      const double d = all_mu[(size_t)(i * L + j)] - mean_j;
      var += d * d;
    }
    ev.activity[(size_t)j] = var / n;
    if (ev.activity[(size_t)j] > 0.01) ++ev.active_units;
  }
  return ev;
}

}  // namespace gt
