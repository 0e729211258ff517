// test_cli_ae.cpp: the `gentape` command line for autoencoders end to end (the built binary, spawned
// on small MNIST subsets): train ae / sparse-ae / denoising-ae with falling loss, exact --resume,
// eval --json (recon, PSNR, compression, denoising before/after), encode -> decode against
// reconstruct, the code-shape checks of decode, interpolate/latents/reconstruct on an AE run, and
// the refusals: VAE-only commands, flags that do not fit the model.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "models/metrics.h"
#include "tests/cli_harness.h"
#include "tools/io/datasets.h"
#include "tools/io/idx.h"
#include "tools/io/npy.h"
#include "tools/io/png.h"

using namespace gt;
using namespace gt::test_cli;
namespace fs = std::filesystem;

namespace {

void write_small_mnist(const std::string& dir) { test_cli::write_small_mnist(dir, 1000, 200); }

// A small, fast autoencoder: 784-64-k / k-64-784 on the small MNIST in `data`.
std::string ae_flags(const std::string& data) { return "--data " + data + " --hidden 64 --batch 64 --seed 3" + kCpu; }
// The usual one: 512 training images, k = 2.
std::string small_ae(const std::string& data) { return ae_flags(data) + " --train-limit 512 --latent 2"; }
const int kGrid = 30;  // a 28-pixel image plus the 2-pixel grid padding

nlohmann::json json_of(const Result& r) { return nlohmann::json::parse(r.out); }

}  // namespace

TEST_CASE("cli ae: train, exact resume, eval --json with the compression report", "[cli][ae]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", a = tmp.path + "/a", b = tmp.path + "/b";
  write_small_mnist(data);
  const std::string kSmallAe = small_ae(data);

  // Uninterrupted: 2 epochs. Interrupted: 1 epoch, then --resume to 2.
  Result ra = gentape("train ae " + kSmallAe + " --epochs 2 --out " + a);
  REQUIRE(ra.code == 0);
  CHECK_THAT(ra.out, Catch::Contains("epoch   2/2") && Catch::Contains("psnr"));
  CHECK_THAT(ra.out, Catch::Contains("784-64-2"));
  REQUIRE(gentape("train ae " + kSmallAe + " --epochs 1 --out " + b).code == 0);
  Result rb = gentape("train --resume --epochs 2 --out " + b + kCpu);
  REQUIRE(rb.code == 0);
  CHECK_THAT(rb.out, Catch::Contains("resuming after epoch 1"));

  std::vector<nlohmann::json> ma = metrics(a), mb = metrics(b);
  REQUIRE(ma.size() == 2);
  REQUIRE(mb.size() == 2);
  for (size_t e = 0; e < 2; ++e) {
    INFO("epoch " << e + 1);
    CHECK(mb[e]["epoch"] == (int)e + 1);
    for (const char* k : {"train_loss", "test_recon", "test_psnr"}) {
      INFO(k);
      CHECK(ma[e][k].get<double>() == mb[e][k].get<double>());  // bit for bit
    }
    for (const char* k : {"seconds", "samples_per_s"}) CHECK(ma[e].contains(k));
    CHECK_FALSE(ma[e].contains("test_neg_elbo"));
  }
  CHECK(ma[1]["train_loss"].get<double>() < ma[0]["train_loss"].get<double>());
  CHECK(ma[1]["test_recon"].get<double>() < ma[0]["test_recon"].get<double>());
  CHECK(fs::exists(a + "/loss.png"));
  CHECK_FALSE(fs::exists(a + "/checkpoint.safetensors.tmp"));

  // config.json names the family and stores the AeConfig.
  const nlohmann::json cfg = nlohmann::json::parse(slurp(a + "/config.json"));
  CHECK(cfg["family"] == "ae");
  CHECK(cfg["model"] == "ae");
  CHECK(cfg["ae"]["kind"] == "ae");
  CHECK(cfg["ae"]["latent"] == 2);
  CHECK(cfg["ae"]["hidden"] == nlohmann::json::array({64}));
  CHECK_FALSE(cfg.contains("vae"));

  // eval --json: one JSON object; eval repeats the evaluation that ended training.
  Result ev = gentape("eval " + a + " --json" + kCpu);
  REQUIRE(ev.code == 0);
  const nlohmann::json j = json_of(ev);
  for (const char* k : {"recon", "psnr", "latent", "input_dim", "code_bits", "raw_bits", "compression_ratio"})
    CHECK(j.contains(k));
  CHECK_FALSE(j.contains("psnr_noisy"));
  CHECK(j["recon"].get<double>() == ma[1]["test_recon"].get<double>());
  CHECK(j["psnr"].get<double>() == ma[1]["test_psnr"].get<double>());
  CHECK(std::isfinite(j["psnr"].get<double>()));
  CHECK(j["latent"] == 2);
  CHECK(j["input_dim"] == 784);
  CHECK(j["code_bits"] == 2 * 32);
  CHECK(j["raw_bits"] == 784 * 8);
  CHECK(j["compression_ratio"].get<double>() == 784.0 * 8 / (2 * 32));
  // PSNR is measured on outputs clamped to [0, 1], which never moves a pixel away from a target in
  // [0, 1]: it is at least the PSNR of the raw per-pixel error recon / 784.
  CHECK(j["psnr"].get<double>() >= 10 * std::log10(784.0 / j["recon"].get<double>()) - 1e-9);
  Result evh = gentape("eval " + a + kCpu);
  REQUIRE(evh.code == 0);
  CHECK_THAT(evh.out, Catch::Contains("compression") && Catch::Contains("98.0:1") && Catch::Contains("PSNR"));

  // Refusals: VAE-only eval flag; run flags that differ from the run's, or that it does not have.
  Result iw = gentape("eval " + a + " --iw-samples 8" + kCpu);
  CHECK(iw.code == 2);
  CHECK_THAT(iw.err, Catch::Contains("--iw-samples") && Catch::Contains("autoencoder"));
  Result lat = gentape("train --resume --latent 5 --epochs 3 --out " + b);
  CHECK(lat.code == 2);
  CHECK_THAT(lat.err, Catch::Contains("--latent"));
  Result l1 = gentape("train --resume --l1 0.1 --epochs 3 --out " + b);
  CHECK(l1.code == 2);
  CHECK_THAT(l1.err, Catch::Contains("--l1") && Catch::Contains("sparse-ae"));
  CHECK(gentape("train vae --resume --out " + b).code == 2);  // the run is an ae
  CHECK(metrics(b).size() == 2);                               // untouched by the refusals
}

TEST_CASE("cli ae: encode -> decode equals reconstruct; decode checks the codes' shape", "[cli][ae]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", run = tmp.path + "/ae";
  write_small_mnist(data);
  REQUIRE(gentape("train ae " + small_ae(data) + " --epochs 1 --out " + run).code == 0);
  const Dataset test = io::load_dataset(data).test;
  const int64_t N = test.size();

  // encode: the whole test set, (N, 2) float32, and the labels, (N) int32 in data-set order.
  Result enc = gentape("encode " + run + " --out " + tmp.path + "/z.npy --labels " + tmp.path + "/y.npy" + kCpu);
  REQUIRE(enc.code == 0);
  CHECK_THAT(enc.out, Catch::Contains(tmp.path + "/z.npy") && Catch::Contains(tmp.path + "/y.npy"));
  Tensor z = io::load_npy(tmp.path + "/z.npy");
  REQUIRE(z.dtype() == DType::F32);
  REQUIRE(z.shape() == Shape{N, 2});
  Tensor y = io::load_npy(tmp.path + "/y.npy");
  REQUIRE(y.dtype() == DType::I32);
  CHECK(y.to_vector_i32() == test.labels.to_vector_i32());
  Result enc5 = gentape("encode " + run + " --split train --n 5 --out " + tmp.path + "/z5.npy" + kCpu);
  REQUIRE(enc5.code == 0);
  CHECK(io::load_npy(tmp.path + "/z5.npy").shape() == Shape{5, 2});
  CHECK(gentape("encode " + run + " --n 0 --out " + tmp.path + "/z0.npy").code == 2);
  CHECK(gentape("encode " + run).code == 2);  // --out is required

  // decode: the images as .npy, (N, 784) in [0, 1], and a PNG grid of ceil(sqrt(N)) per row.
  Result dec = gentape("decode " + run + " " + tmp.path + "/z.npy --npy " + tmp.path + "/x.npy --out " + tmp.path +
                       "/d.png --scale 1" + kCpu);
  REQUIRE(dec.code == 0);
  CHECK_THAT(dec.out, Catch::Contains(tmp.path + "/d.png") && Catch::Contains(tmp.path + "/x.npy"));
  Tensor x = io::load_npy(tmp.path + "/x.npy");
  REQUIRE(x.shape() == Shape{N, 784});
  std::vector<float> xv = x.to_vector();
  CHECK(std::count_if(xv.begin(), xv.end(), [](float v) { return !(v >= 0.f && v <= 1.f); }) == 0);
  const int per_row = (int)std::ceil(std::sqrt((double)N));
  const int rows = (int)((N + per_row - 1) / per_row);
  io::Canvas d = io::read_png(tmp.path + "/d.png");
  CHECK(d.width() == per_row * kGrid + 2);
  CHECK(d.height() == rows * kGrid + 2);
  // Without --out the grid goes into the run directory.
  Result dec2 = gentape("decode " + run + " " + tmp.path + "/z5.npy" + kCpu);
  REQUIRE(dec2.code == 0);
  CHECK_THAT(dec2.out, Catch::Contains(run + "/decoded.png"));

  // decode(encode(x)) against reconstruct: the same images, computed in other batch sizes (10 rows
  // vs chunks of 500), so the GEMMs may sum in another order: float32 rounding only.
  const double kBatchTol = 1e-5;
  Result rec = gentape("reconstruct " + run + " --n 10 --npy " + tmp.path + "/r.npy" + kCpu);
  REQUIRE(rec.code == 0);
  CHECK_THAT(rec.out, Catch::Contains(run + "/reconstructions.png"));
  std::vector<float> rv = io::load_npy(tmp.path + "/r.npy").to_vector();
  REQUIRE(rv.size() == 10 * 784);
  double worst = 0;
  for (int64_t i = 0; i < 10; ++i)
    for (int64_t p = 0; p < 784; ++p)
      worst = std::max(worst, (double)std::fabs(rv[i * 784 + p] - xv[(i * N / 10) * 784 + p]));
  CHECK(worst <= kBatchTol);
  // The decoded test set has the PSNR that eval reports (models/metrics.h's psnr on the pixels).
  Result ev = gentape("eval " + run + " --json" + kCpu);
  REQUIRE(ev.code == 0);
  const double psnr = gt::psnr(xv.data(), test.images.data(), N * 784);
  CHECK(json_of(ev)["psnr"].get<double>() == Approx(psnr).epsilon(1e-5));

  // decode refuses codes that do not fit the model, naming the file and the shapes.
  const std::string bad = tmp.path + "/bad.npy";
  io::save_npy(bad, Tensor::from_vector(std::vector<float>(15, 0.5f), {3, 5}));
  Result wrong = gentape("decode " + run + " " + bad + kCpu);
  CHECK(wrong.code == 1);
  CHECK_THAT(wrong.err, Catch::Contains(bad) && Catch::Contains("(3, 5)") && Catch::Contains("(N, 2)"));
  io::save_npy(bad, Tensor::from_vector({0.1f, 0.2f}, {2}));
  Result flat = gentape("decode " + run + " " + bad + kCpu);
  CHECK(flat.code == 1);
  CHECK_THAT(flat.err, Catch::Contains(bad) && Catch::Contains("(2)"));
  io::save_npy(bad, Tensor::from_indices({1, 2, 3, 4}, {2, 2}));
  Result ints = gentape("decode " + run + " " + bad + kCpu);
  CHECK(ints.code == 1);
  CHECK_THAT(ints.err, Catch::Contains(bad) && Catch::Contains("float32"));
  Result none = gentape("decode " + run + " " + tmp.path + "/missing.npy" + kCpu);
  CHECK(none.code == 1);
  CHECK_THAT(none.err, Catch::Contains(tmp.path + "/missing.npy"));
  Result lab = gentape("decode " + run + " " + tmp.path + "/z5.npy --label 3" + kCpu);
  CHECK(lab.code == 2);
  CHECK_THAT(lab.err, Catch::Contains("--label"));
}

TEST_CASE("cli ae: interpolate, latents and reconstruct on an AE run; sample and manifold refuse it", "[cli][ae]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", run = tmp.path + "/ae";
  write_small_mnist(data);
  REQUIRE(gentape("train ae " + ae_flags(data) + " --train-limit 256 --epochs 1 --out " + run).code == 0);
  struct Pic {
    std::string cmd, file;
    int w, h;
  };
  const Pic pics[] = {
      {"interpolate " + run + " --from 3 --to 150 --steps 5 --scale 1", "interpolation.png", 7 * kGrid + 2, kGrid + 2},
      {"interpolate " + run + " --scale 1", "interpolation.png", 12 * kGrid + 2, kGrid + 2},  // defaults: 10 steps
      {"reconstruct " + run + " --n 8 --scale 1", "reconstructions.png", 2 * (8 * kGrid + 2) + 16, kGrid + 2 + 20},
      {"latents " + run, "latents.png", 640, 640},
  };
  for (const Pic& p : pics) {
    INFO(p.cmd);
    Result r = gentape(p.cmd + kCpu);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains(run + "/" + p.file));
    io::Canvas c = io::read_png(run + "/" + p.file);
    CHECK(c.width() == p.w);
    CHECK(c.height() == p.h);
  }
  for (const char* cmd : {"sample", "manifold"}) {
    INFO(cmd);
    Result r = gentape(std::string(cmd) + " " + run + kCpu);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("no prior") && Catch::Contains("gentape decode"));
  }
  Result cor = gentape("reconstruct " + run + " --corrupt" + kCpu);
  CHECK(cor.code == 2);
  CHECK_THAT(cor.err, Catch::Contains("--corrupt") && Catch::Contains("denoising-ae"));
  Result far = gentape("interpolate " + run + " --from 0 --to 200" + kCpu);  // 200 test images: 0..199
  CHECK(far.code == 2);
  CHECK_THAT(far.err, Catch::Contains("--to") && Catch::Contains("'200'"));
}

TEST_CASE("cli ae: sparse-ae and denoising-ae train with falling loss; eval reports PSNR before and after denoising",
          "[cli][ae]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", sp = tmp.path + "/sparse", dn = tmp.path + "/denoise",
                    cv = tmp.path + "/conv";
  write_small_mnist(data);
  REQUIRE(gentape("train sparse-ae " + ae_flags(data) + " --train-limit 512 --latent 8 --l1 0.01 --epochs 2 --out " + sp)
              .code == 0);
  REQUIRE(gentape("train denoising-ae " + small_ae(data) + " --noise gaussian:.5 --epochs 2 --out " + dn).code == 0);
  REQUIRE(gentape("train denoising-ae --data " + data +
                  " --arch conv --hidden 32 --batch 64 --seed 3 --train-limit 128 --latent 2 --noise mask:0.5 --epochs 2 --out " +
                  cv + kCpu)
              .code == 0);
  for (const std::string& run : {sp, dn, cv}) {
    INFO(run);
    std::vector<nlohmann::json> m = metrics(run);
    REQUIRE(m.size() == 2);
    CHECK(m[1]["train_loss"].get<double>() < m[0]["train_loss"].get<double>());
  }
  const nlohmann::json scfg = nlohmann::json::parse(slurp(sp + "/config.json"));
  CHECK(scfg["ae"]["kind"] == "sparse");
  CHECK(scfg["ae"]["l1"].get<double>() == 0.01);
  const nlohmann::json dcfg = nlohmann::json::parse(slurp(dn + "/config.json"));
  CHECK(dcfg["ae"]["kind"] == "denoising");
  CHECK(dcfg["ae"]["noise"] == "gaussian:0.5");  // stored in canonical form
  CHECK(metrics(dn)[1].contains("test_psnr_denoised"));

  Result es = gentape("eval " + sp + " --json" + kCpu);
  REQUIRE(es.code == 0);
  CHECK(json_of(es)["compression_ratio"].get<double>() == 784.0 * 8 / (8 * 32));
  CHECK_FALSE(json_of(es).contains("psnr_noisy"));

  for (const std::string& run : {dn, cv}) {
    INFO(run);
    Result e1 = gentape("eval " + run + " --json" + kCpu);
    REQUIRE(e1.code == 0);
    const nlohmann::json j = json_of(e1);
    for (const char* k : {"psnr_noisy", "psnr_denoised", "noise"}) CHECK(j.contains(k));
    const double before = j["psnr_noisy"].get<double>(), after = j["psnr_denoised"].get<double>();
    CHECK(std::isfinite(before));
    CHECK(std::isfinite(after));
    // The MLP (512 images, 16 steps) already beats its clipped noisy input; the conv one (128
    // images, 4 steps) is only checked for running end to end.
    if (run == dn) CHECK(after > before);
    CHECK(j["psnr_denoised"].get<double>() == metrics(run)[1]["test_psnr_denoised"].get<double>());
    // The noise is seeded: a second eval gives the same numbers, another seed other ones.
    CHECK(json_of(gentape("eval " + run + " --json" + kCpu))["psnr_noisy"].get<double>() == before);
    CHECK(json_of(gentape("eval " + run + " --json --seed 99" + kCpu))["psnr_noisy"].get<double>() != before);
  }
  Result eh = gentape("eval " + dn + kCpu);
  REQUIRE(eh.code == 0);
  CHECK_THAT(eh.out, Catch::Contains("gaussian:0.5") && Catch::Contains("denoised"));

  // reconstruct --corrupt: original, noisy input, denoised.
  Result rc = gentape("reconstruct " + dn + " --corrupt --n 8 --scale 1" + kCpu);
  REQUIRE(rc.code == 0);
  io::Canvas c = io::read_png(dn + "/reconstructions.png");
  CHECK(c.width() == 3 * (8 * kGrid + 2) + 2 * 16);
  CHECK(c.height() == kGrid + 2 + 20);
}

TEST_CASE("cli ae: flags that do not fit the model are refused, naming them", "[cli][ae]") {
  struct Case {
    std::string args, must_contain;
  };
  const Case cases[] = {
      {"train ae --l1 0.1", "--l1"},
      {"train vae --l1 0.1", "--l1"},
      {"train denoising-ae --l1 0.1", "--l1"},
      {"train sparse-ae --noise gaussian:0.1", "--noise"},
      {"train ae --beta 2", "--beta"},
      {"train sparse-ae --decoder gaussian", "--decoder"},
      {"train denoising-ae --noise salt:0.1", "salt"},
      {"train denoising-ae --noise mask:1.5", "mask:1.5"},
      {"train sparse-ae --l1 -1", "--l1"},
      {"train autoencoder", "autoencoder"},
  };
  for (const Case& c : cases) {
    INFO(c.args);
    Result r = gentape(c.args + kCpu);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains(c.must_contain));
  }
  CHECK(gentape("encode --help").code == 0);
  CHECK(gentape("decode --help").code == 0);
}

TEST_CASE("cli ae: a non-finite loss stops autoencoder training", "[cli][ae]") {
  if (!have_mnist()) return;
  TempDir tmp;
  write_small_mnist(tmp.path + "/data");
  Result d = gentape("train ae " + small_ae(tmp.path + "/data") + " --epochs 2 --optimizer sgd --lr 1e30 --out " +
                     tmp.path + "/nan");
  CHECK(d.code == 1);
  CHECK_THAT(d.err, Catch::Contains("non-finite") && Catch::Contains("epoch 1, step"));
}
