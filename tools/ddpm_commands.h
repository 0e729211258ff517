// ddpm_commands.h: the diffusion-model halves of the commands that serve every family (`sample` and
// `eval` live in vae_commands.cpp, which declares one parser per command and hands a ddpm run here),
// and the FID feature network's cache that `gentape fid` keeps (ddpm_commands.cpp).
//
//   cli::Parser p("sample", "RUN", "...");
//   add_ddpm_sample_flags(p);                 // --sampler, --steps, --guidance, --batch, --raw-weights
//   ... p.parse(args); LoadedRun r = open_run(...);
//   if (r.ddpm) return sample_ddpm(p, r);
#pragma once

#include <string>

#include "models/fid_net.h"
#include "tools/cli.h"
#include "tools/run_dir.h"

namespace gt::tools {

// The flags a ddpm run's `sample` takes beyond the shared ones (n, label, seed, out, scale, npy).
void add_ddpm_sample_flags(cli::Parser& p);
// Refuses the ddpm-only flags of add_ddpm_sample_flags on a VAE/AE run, naming the flag.
void refuse_ddpm_sample_flags(const cli::Parser& p, const LoadedRun& r);
// `gentape sample` on a ddpm run (p parsed with the flags above, r a ddpm run).
int sample_ddpm(const cli::Parser& p, const LoadedRun& r);
// `gentape eval` on a ddpm run: the test-set eps-prediction loss per timestep bucket (flags n, batch,
// seed, json, raw-weights).
int eval_ddpm(const cli::Parser& p, const LoadedRun& r);

// The FidNet of a data set, trained once (2 epochs, seed 1, on the full training split) and cached as
// <cache_dir()>/fidnet-<data>.safetensors, its test accuracy in the file's metadata. A cached file
// whose data fingerprint differs from the data set's (a DIR whose files changed) is retrained.
struct CachedFidNet {
  std::unique_ptr<FidNet> net;  // on the requested device, eval mode
  double test_accuracy = 0;
  std::string path;
  bool trained_now = false;
};
// $GENTAPE_CACHE, else <data_dir()>/cache (tools/io/datasets.h: $GENTAPE_DATA or <repo>/data).
std::string cache_dir();
// data: the run's data name or directory; full: that data set, loaded whole. Progress on stderr.
CachedFidNet fid_net_for(const std::string& data, const io::DataSplit& full, Device device);

}  // namespace gt::tools
