// ae.cpp: the autoencoders of models/ae.h — config, noise specs and corruption, architectures, loss.
//
// Parameter names (D = height*width input pixels, k = latent, hidden = {H1, ..., Hn}, n >= 1; every
// Linear is "<name>.weight" (out, in) and "<name>.bias" (out)):
//
//   MLP (the default 784-512-256-2 / 2-256-512-784):
//     enc1 (D -> H1), enc2 (H1 -> H2), ..., encn (H(n-1) -> Hn), enc_out (Hn -> k, the code)
//     dec1 (k -> Hn), dec2 (Hn -> H(n-1)), ..., decn (H2 -> H1), dec_out (H1 -> D, the output)
//     784*512+512 + 512*256+256 + 256*2+2 + 2*256+256 + 256*512+512 + 512*784+784 = 1,068,306 numbers.
//   conv (one channel, H and W divisible by 4; h = H/4, w = W/4, 7x7 for 28x28):
//     conv1    Conv2d(1, 32, 4, stride 2, pad 1)            H x W -> H/2 x W/2
//     conv2    Conv2d(32, 64, 4, stride 2, pad 1)           -> h x w, flattened to 64*h*w
//     enc1 (64*h*w -> H1), ..., encn, enc_out (Hn -> k)
//     dec1 (k -> Hn), ..., decn (H2 -> H1), dec_out (H1 -> 64*h*w), reshaped to (B, 64, h, w)
//     deconv1  ConvTranspose2d(64, 32, 4, stride 2, pad 1)  -> H/2 x W/2
//     deconv2  ConvTranspose2d(32, 1, 4, stride 2, pad 1)   -> H x W, flattened to D (linear output)
//   Every hidden layer is followed by ReLU (the conv decoder's dec_out and deconv1 too); the code
//   (enc_out) and the output (dec_out for MLP, deconv2 for conv) are linear.
//
// Loss: recon_b = sum_j (x^_bj - x_bj)^2 with sub, square and sum over dim 1; the sparse term
// l1_b = sum_j |z_bj| with abs (subgradient 0 at 0), so dL/dz = lambda sign(z) / B from that term.
#include "models/ae.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "models/config_json.h"

namespace gt {

// ---------------------------------------------------------------------------------------------
// NoiseSpec and corrupt


NoiseSpec NoiseSpec::parse(const std::string& spec) {
  const size_t colon = spec.find(':');
  GT_CHECK(colon != std::string::npos,
           "noise spec '" << spec << "': expected 'gaussian:<sigma>' or 'mask:<p>'");
  NoiseSpec n;
  n.kind = spec.substr(0, colon);
  GT_CHECK(n.kind == "gaussian" || n.kind == "mask",
           "noise spec '" << spec << "': unknown noise '" << n.kind << "' (known: gaussian, mask)");
  const std::string num = spec.substr(colon + 1);
  char* end = nullptr;
  const float v = num.empty() ? 0.f : std::strtof(num.c_str(), &end);
  GT_CHECK(!num.empty() && end == num.c_str() + num.size() && std::isfinite(v),
           "noise spec '" << spec << "': '" << num << "' is not a finite number");
  if (n.kind == "gaussian")
    GT_CHECK(v >= 0.f, "noise spec '" << spec << "': sigma must be >= 0, got " << num);
  else
    GT_CHECK(v >= 0.f && v < 1.f, "noise spec '" << spec << "': the drop probability p must be in [0, 1), got "
                                                  << num);
  n.value = v;
  return n;
}

std::string NoiseSpec::str() const {
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, (double)value);
    if (std::strtof(buf, nullptr) == value) break;
  }
  return kind + ":" + buf;
}

Tensor corrupt(const Tensor& x, const NoiseSpec& noise, Generator& gen) {
  check_defined("corrupt", x, "x");
  NoGradGuard no_grad;
  if (noise.kind == "gaussian") return add(x, mul(gen.randn(x.shape(), x.device()), noise.value));
  GT_CHECK(noise.kind == "mask", "corrupt: unknown noise kind '" << noise.kind << "' (known: gaussian, mask)");
  // The keep mask is built on the host from the device's uniforms (no comparison op yet): one
  // device->host->device round trip per batch on CUDA.
  std::vector<float> u = gen.rand(x.shape(), x.device()).to_vector();
  for (float& v : u) v = v > noise.value ? 1.f : 0.f;
  return mul(x, Tensor::from_vector(u, x.shape(), x.device()));
}

// ---------------------------------------------------------------------------------------------
// AeConfig

std::string AeConfig::to_json() const {
  nlohmann::ordered_json j;
  j["arch"] = arch;
  j["height"] = height;
  j["width"] = width;
  j["hidden"] = hidden;
  j["latent"] = latent;
  j["kind"] = kind;
  j["l1"] = detail::shortest_decimal(l1);
  j["noise"] = noise;
  return j.dump();
}

AeConfig AeConfig::from_json(const std::string& text) {
  const nlohmann::json j = detail::parse_config_object(text, "AeConfig");
  AeConfig c;  // keys left out keep their defaults
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const detail::ConfigField f{"AeConfig", k, it.value()};
    if (k == "arch") c.arch = f.string();
    else if (k == "height") c.height = f.integer();
    else if (k == "width") c.width = f.integer();
    else if (k == "latent") c.latent = f.integer();
    else if (k == "kind") c.kind = f.string();
    else if (k == "l1") c.l1 = (float)f.number();
    else if (k == "noise") c.noise = f.string();
    else if (k == "hidden") c.hidden = f.integers();
    else {
      GT_FAIL("AeConfig: unknown key '" << k << "' (known: arch, height, width, hidden, latent, kind, l1, noise)");
    }
  }
  c.validate();
  return c;
}

void AeConfig::validate() const {
  GT_CHECK(arch == "mlp" || arch == "conv", "AeConfig: arch must be 'mlp' or 'conv', got '" << arch << "'");
  GT_CHECK(height >= 1 && width >= 1,
           "AeConfig: height and width must be >= 1, got height " << height << ", width " << width);
  GT_CHECK(!hidden.empty(), "AeConfig: hidden must list at least one width, got none");
  for (size_t i = 0; i < hidden.size(); ++i)
    GT_CHECK(hidden[i] >= 1, "AeConfig: hidden[" << i << "] must be >= 1, got " << hidden[i]);
  if (arch == "conv")
    GT_CHECK(height % 4 == 0 && width % 4 == 0,
             "AeConfig: arch 'conv' needs height and width divisible by 4 (two stride-2 convolutions), got height "
                 << height << ", width " << width);
  GT_CHECK(latent >= 1, "AeConfig: latent must be >= 1, got " << latent);
  GT_CHECK(kind == "ae" || kind == "sparse" || kind == "denoising",
           "AeConfig: kind must be 'ae', 'sparse' or 'denoising', got '" << kind << "'");
  GT_CHECK(std::isfinite(l1) && l1 >= 0.f, "AeConfig: l1 must be finite and >= 0, got " << l1);
  try {
    (void)NoiseSpec::parse(noise);
  } catch (const Error& e) {
    GT_FAIL("AeConfig: noise: " << e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Autoencoder

struct Autoencoder::Impl {
  std::vector<std::shared_ptr<nn::Linear>> enc, dec;  // hidden Linears
  std::shared_ptr<nn::Linear> enc_out, dec_out;
  std::shared_ptr<nn::Conv2d> conv1, conv2;  // conv only
  std::shared_ptr<nn::ConvTranspose2d> deconv1, deconv2;
};

Autoencoder::Autoencoder(const AeConfig& config, Generator& init) : cfg_(config), impl_(std::make_shared<Impl>()) {
  cfg_.validate();
  noise_ = cfg_.noise_spec();
  Impl& m = *impl_;
  const bool conv = cfg_.arch == "conv";
  const int64_t D = cfg_.input_dim(), flat = 64 * (cfg_.height / 4) * (cfg_.width / 4);
  auto linear = [&](const std::string& name, int64_t in, int64_t out) {
    return register_module(name, std::make_shared<nn::Linear>(in, out, init));
  };
  if (conv) {
    m.conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, 32, 4, init, 2, 1));
    m.conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(32, 64, 4, init, 2, 1));
  }
  const size_t n = cfg_.hidden.size();
  int64_t in = conv ? flat : D;
  for (size_t i = 0; i < n; ++i) {
    m.enc.push_back(linear("enc" + std::to_string(i + 1), in, cfg_.hidden[i]));
    in = cfg_.hidden[i];
  }
  m.enc_out = linear("enc_out", in, cfg_.latent);
  in = cfg_.latent;
  for (size_t i = 0; i < n; ++i) {
    const int64_t w = cfg_.hidden[n - 1 - i];
    m.dec.push_back(linear("dec" + std::to_string(i + 1), in, w));
    in = w;
  }
  m.dec_out = linear("dec_out", in, conv ? flat : D);
  if (conv) {
    m.deconv1 = register_module("deconv1", std::make_shared<nn::ConvTranspose2d>(64, 32, 4, init, 2, 1));
    m.deconv2 = register_module("deconv2", std::make_shared<nn::ConvTranspose2d>(32, 1, 4, init, 2, 1));
  }
}

Tensor Autoencoder::encode(const Tensor& x) const {
  const Impl& m = *impl_;
  GT_CHECK(x.defined() && x.dim() == 2 && x.size(1) == cfg_.input_dim(),
           "Autoencoder::encode: x must be (B, " << cfg_.input_dim() << ") for " << cfg_.height << "x" << cfg_.width
                                                 << " images, got " << (x.defined() ? x.shape().str() : "undefined"));
  const int64_t B = x.size(0);
  Tensor h = x;
  if (cfg_.arch == "conv") {
    h = reshape(x, {B, 1, cfg_.height, cfg_.width});
    h = relu(m.conv1->forward(h));
    h = relu(m.conv2->forward(h));
    h = reshape(h, {B, -1});
  }
  for (const auto& layer : m.enc) h = layer->forward(h, LinearAct::Relu);
  return m.enc_out->forward(h);
}

Tensor Autoencoder::decode(const Tensor& z) const {
  const Impl& m = *impl_;
  GT_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg_.latent,
           "Autoencoder::decode: z must be (B, " << cfg_.latent << "), got "
                                                 << (z.defined() ? z.shape().str() : "undefined"));
  const int64_t B = z.size(0);
  Tensor h = z;
  for (const auto& layer : m.dec) h = layer->forward(h, LinearAct::Relu);
  Tensor out = m.dec_out->forward(h);
  if (cfg_.arch == "conv") {
    h = reshape(relu(out), {B, 64, cfg_.height / 4, cfg_.width / 4});
    h = relu(m.deconv1->forward(h));
    out = reshape(m.deconv2->forward(h), {B, cfg_.input_dim()});
  }
  return out;
}

AeLoss Autoencoder::loss(const Tensor& x, Generator& gen) const {
  const Tensor input = cfg_.kind == "denoising" ? corrupt(x, noise_, gen) : x;
  Tensor z = encode(input);
  Tensor recon = sum(square(sub(decode(z), x)), 1);  // target: the clean x
  if (cfg_.kind != "sparse") return {mean(recon), recon, Tensor()};
  Tensor l1 = sum(abs(z), 1);
  return {mean(add(recon, mul(l1, cfg_.l1))), recon, l1};
}

Tensor Autoencoder::reconstruct(const Tensor& x) const {
  NoGradGuard no_grad;
  return decode(encode(x));
}

}  // namespace gt
