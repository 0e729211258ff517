// test_cli_uses.cpp: the commands that use a trained autoencoder (tools/use_commands.cpp), end to end
// through the built `gentape` on a tiny MNIST copy: classify (--json keys, accuracies above chance on
// the whole training split, --finetune leaving the checkpoint's bytes alone), outliers (the AUROC
// recomputed here from the model's reconstruction errors by a naive pairwise count, the PNG grid, the
// warning for a class the model saw, the missing --holdout-class), and compare-ae-vae (both runs,
// both pictures, the table).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "core/device.h"
#include "tests/cli_harness.h"
#include "tools/io/datasets.h"
#include "tools/io/idx.h"
#include "tools/io/png.h"
#include "tools/run_dir.h"

using namespace gt;
using namespace gt::test_cli;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kTrain = 600, kTest = 200;

void write_tiny_mnist(const std::string& dir) { test_cli::write_small_mnist(dir, kTrain, kTest, /*shuffled=*/true); }

std::string tiny(const std::string& data) { return "--data " + data + " --hidden 64 --batch 64 --seed 3" + kCpu; }

nlohmann::json json_of(const Result& r) { return nlohmann::json::parse(r.out); }

// The AUROC by its definition: over every (positive, negative) pair, 1 when the positive scores
// higher, 1/2 on a tie. O(P N), independent of models/metrics.h's rank formula.
double pairwise_auroc(const std::vector<double>& s, const std::vector<int32_t>& y, int positive) {
  double sum = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (y[i] != positive) continue;
    for (size_t j = 0; j < s.size(); ++j) {
      if (y[j] == positive) continue;
      sum += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
      pairs += 1;
    }
  }
  return sum / pairs;
}

const int kGrid = 30;  // a 28-pixel image plus the 2-pixel padding of io::image_grid

}  // namespace

TEST_CASE("cli uses: classify on an AE's codes beats chance; --finetune leaves the checkpoint unchanged",
          "[cli][uses]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", run = tmp.path + "/ae";
  write_tiny_mnist(data);
  // Trained on 300 images without class 3; classify uses all 600 and every class.
  REQUIRE(gentape("train ae " + tiny(data) + " --latent 8 --train-limit 300 --holdout-class 3 --epochs 3 --out " + run)
              .code == 0);
  const std::string ckpt = run + "/checkpoint.safetensors";
  const std::string before = slurp(ckpt);
  REQUIRE(!before.empty());

  // 100 epochs of 5 steps: Adam at lr 1e-3 moves a linear head on 8 features slowly.
  const std::string classify = "classify " + run + " --epochs 100 --json" + kCpu;
  Result c = gentape(classify);
  REQUIRE(c.code == 0);
  const nlohmann::json j = json_of(c);
  for (const char* k : {"accuracy", "baseline_accuracy", "train_accuracy", "baseline_train_accuracy", "head",
                        "finetune", "latent", "epochs", "seconds", "baseline_seconds", "n_train", "n_test"})
    CHECK(j.contains(k));
  CHECK(j["head"] == "linear");
  CHECK(j["finetune"] == false);
  CHECK(j["latent"] == 8);
  CHECK(j["epochs"] == 100);
  CHECK(j["features"] == "E(x)");
  CHECK(j["n_train"] == kTrain);  // the whole training split, not the run's 300 without class 3
  CHECK(j["n_test"] == kTest);
  for (const char* k : {"accuracy", "baseline_accuracy", "train_accuracy", "baseline_train_accuracy"}) {
    INFO(k);
    CHECK(j[k].get<double>() >= 0.0);
    CHECK(j[k].get<double>() <= 1.0);
  }
  // Chance is about 0.1 (ten classes of 14 to 23 test images). A 3-epoch 8-D code separates digits
  // well above it (0.46 when written); a linear model on 600 raw MNIST images reaches about 0.8.
  CHECK(j["accuracy"].get<double>() > 0.3);
  CHECK(j["baseline_accuracy"].get<double>() > 0.6);
  // The accuracy is a multiple of 1 / 200.
  CHECK(std::fabs(j["accuracy"].get<double>() * kTest - std::round(j["accuracy"].get<double>() * kTest)) < 1e-9);

  // Same flags, same numbers (seeded initialisation and minibatch order, one thread).
  Result again = gentape(classify);
  REQUIRE(again.code == 0);
  CHECK(json_of(again)["accuracy"] == j["accuracy"]);
  CHECK(json_of(again)["baseline_accuracy"] == j["baseline_accuracy"]);

  Result ft = gentape("classify " + run + " --head mlp --finetune --epochs 10 --json" + kCpu);
  REQUIRE(ft.code == 0);
  const nlohmann::json f = json_of(ft);
  CHECK(f["head"] == "mlp");
  CHECK(f["finetune"] == true);
  CHECK(f["epochs"] == 10);
  CHECK(f["accuracy"].get<double>() >= 0.0);
  CHECK(f["accuracy"].get<double>() <= 1.0);
  CHECK(f["accuracy"].get<double>() > 0.3);
  CHECK(slurp(ckpt) == before);  // byte for byte: the fine-tuned encoder was never saved
  // ... and the frozen codes afterwards are the run's: the same accuracy as before.
  CHECK(json_of(gentape(classify))["accuracy"] == j["accuracy"]);

  Result text = gentape("classify " + run + " --epochs 1" + kCpu);
  REQUIRE(text.code == 0);
  CHECK_THAT(text.out, Catch::Contains("raw pixels, d = 784") && Catch::Contains("frozen E(x), k = 8"));
  CHECK(gentape("classify " + run + " --head svm").code == 2);
  CHECK(gentape("classify " + run + " --epochs 0").code == 2);
}

TEST_CASE("cli uses: outliers on an AE trained without class 3: the AUROC of its reconstruction errors, the grid",
          "[cli][uses]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", run = tmp.path + "/ae", png = tmp.path + "/top.png";
  write_tiny_mnist(data);
  REQUIRE(gentape("train ae " + tiny(data) + " --latent 4 --holdout-class 3 --epochs 2 --out " + run).code == 0);

  Result o = gentape("outliers " + run + " --n-show 20 --out " + png + " --json" + kCpu);
  REQUIRE(o.code == 0);
  CHECK(o.err.empty());  // the model never saw class 3: no warning
  const nlohmann::json j = json_of(o);
  CHECK(j["holdout_class"] == 3);  // the run's own
  CHECK(j["trained_without_class"] == true);
  CHECK(j["score"] == "recon");
  CHECK(j["n"] == kTest);
  CHECK_FALSE(j.contains("auroc_recon"));
  const double auc = j["auroc"].get<double>();
  CHECK(auc >= 0.0);
  CHECK(auc <= 1.0);

  // The same AUROC from the model's reconstruction errors computed here, pair by pair.
  {
    tools::LoadedRun r = tools::open_run(run, Device::CPU);
    const Dataset test = io::load_dataset(data).test;
    std::vector<float> y, x = test.images.to_vector();
    {
      const int threads = num_threads();
      set_num_threads(1);  // as the command ran: the same sums, bit for bit
      NoGradGuard no_grad;
      y = r.ae->reconstruct(test.images).to_vector();
      set_num_threads(threads);
    }
    std::vector<double> s((size_t)kTest, 0.0);
    for (int64_t i = 0; i < kTest; ++i)
      for (int64_t k = 0; k < 784; ++k) {
        const double d = (double)y[(size_t)(i * 784 + k)] - (double)x[(size_t)(i * 784 + k)];
        s[(size_t)i] += d * d;
      }
    const std::vector<int32_t> labels = test.labels.to_vector_i32();
    CHECK(auc == Approx(pairwise_auroc(s, labels, 3)).margin(1e-12));
    int64_t n3 = 0;
    for (int32_t l : labels) n3 += l == 3;
    CHECK(j["n_held_out"] == n3);
  }

  // The PNG: 20 images, 8 per row (3 rows), enlarged 2x, below a caption band.
  REQUIRE(fs::exists(png));
  CHECK(j["png"] == png);
  CHECK(j["n_show"] == 20);
  CHECK(j["shown_held_out"].get<int>() >= 0);
  CHECK(j["shown_held_out"].get<int>() <= 20);
  const io::Canvas c = io::read_png(png);
  CHECK(c.width() == (8 * kGrid + 2) * 2);
  CHECK(c.height() == (3 * kGrid + 2) * 2 + 19);

  // Text output, default picture path; another class than the held-out one warns.
  Result t = gentape("outliers " + run + kCpu);
  REQUIRE(t.code == 0);
  CHECK_THAT(t.out, Catch::Contains("AUROC") && Catch::Contains("outliers.png"));
  CHECK(fs::exists(run + "/outliers.png"));
  Result w = gentape("outliers " + run + " --holdout-class 5 --json" + kCpu);
  REQUIRE(w.code == 0);
  CHECK(json_of(w)["trained_without_class"] == false);
  CHECK_THAT(w.err, Catch::Contains("warning") && Catch::Contains("WITH class 5"));
  CHECK(gentape("outliers " + run + " --holdout-class 10" + kCpu).code == 2);  // MNIST classes are 0..9
  CHECK(gentape("outliers " + run + " --samples 4" + kCpu).code == 2);         // an AE needs no samples
}

TEST_CASE("cli uses: outliers and classify on a VAE; --holdout-class is required for a run without one",
          "[cli][uses]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", run = tmp.path + "/vae";
  write_tiny_mnist(data);
  REQUIRE(gentape("train vae " + tiny(data) + " --latent 4 --epochs 30 --out " + run).code == 0);

  Result missing = gentape("outliers " + run + kCpu);
  CHECK(missing.code == 2);
  CHECK_THAT(missing.err, Catch::Contains("--holdout-class") && Catch::Contains("every class"));

  Result o = gentape("outliers " + run + " --holdout-class 1 --samples 2 --json" + kCpu);
  REQUIRE(o.code == 0);
  CHECK_THAT(o.err, Catch::Contains("WITH class 1"));  // the VAE saw every class
  const nlohmann::json j = json_of(o);
  CHECK(j["score"] == "neg_elbo");
  CHECK(j["samples"] == 2);
  for (const char* k : {"auroc", "auroc_recon"}) {
    INFO(k);
    CHECK(j[k].get<double>() >= 0.0);
    CHECK(j[k].get<double>() <= 1.0);
  }
  // -ELBO = recon + KL >= the Bernoulli reconstruction term > 0 for grey pixels: positive means.
  CHECK(j["mean_score_held_out"].get<double>() > 0);
  CHECK(j["mean_score_rest"].get<double>() > 0);
  CHECK(fs::exists(run + "/outliers.png"));

  Result c = gentape("classify " + run + " --json --epochs 200" + kCpu);
  REQUIRE(c.code == 0);
  const nlohmann::json cj = json_of(c);
  CHECK(cj["features"] == "mu(x)");
  CHECK(cj["latent"] == 4);
  CHECK(cj["accuracy"].get<double>() > 0.3);  // 0.53 when written; chance about 0.1
  CHECK(cj["accuracy"].get<double>() <= 1.0);
}

TEST_CASE("cli uses: compare-ae-vae trains both models on the same images and writes its pictures and table",
          "[cli][uses]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", out = tmp.path + "/cmp";
  write_tiny_mnist(data);
  const std::string cmd = "compare-ae-vae --data " + data + " --n 200 --epochs 1 --hidden 32 --batch 64 --n-show 8 --out " +
                          out + kCpu;
  Result r = gentape(cmd);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("-ELBO") && Catch::Contains("PSNR") && Catch::Contains("latents.png"));
  for (const char* m : {"ae", "vae"}) {
    INFO(m);
    const nlohmann::json cfg = nlohmann::json::parse(slurp(out + "/" + m + "/config.json"));
    CHECK(cfg["model"] == m);
    CHECK(cfg["train"]["train_limit"] == 200);
    CHECK(cfg[m]["latent"] == 2);
    CHECK(cfg[m]["hidden"] == nlohmann::json::array({32}));
    CHECK(metrics(out + "/" + m).size() == 1);
  }
  REQUIRE(fs::exists(out + "/latents.png"));
  REQUIRE(fs::exists(out + "/reconstructions.png"));
  const io::Canvas lat = io::read_png(out + "/latents.png");
  CHECK(lat.width() == 2 * 520 + 10);
  CHECK(lat.height() == 520 + 48);
  const io::Canvas rec = io::read_png(out + "/reconstructions.png");
  CHECK(rec.width() == 60 + (8 * kGrid + 2) * 2);
  CHECK(rec.height() == 3 * (kGrid + 2) * 2);
  const nlohmann::json j = nlohmann::json::parse(slurp(out + "/comparison.json"));
  CHECK(j["n_train"] == 200);
  CHECK(j["n_test"] == kTest);
  for (const char* m : {"ae", "vae"}) {
    INFO(m);
    const double mse = j[m]["mse"].get<double>();
    CHECK(mse > 0);
    CHECK(mse < 1);
    CHECK(j[m]["psnr"].get<double>() == Approx(10 * std::log10(1 / mse)).epsilon(1e-12));
  }
  CHECK(j["vae"]["neg_elbo"].get<double>() == Approx(j["vae"]["recon"].get<double>() + j["vae"]["kl"].get<double>()));

  // A second call refuses to train over the runs unless told to.
  Result again = gentape(cmd);
  CHECK(again.code == 2);
  CHECK_THAT(again.err, Catch::Contains("--overwrite"));
  REQUIRE(gentape(cmd + " --overwrite").code == 0);
}
