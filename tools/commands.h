// commands.h: the `gentape` commands, one function each; gentape.cpp's table maps names to them.
// Each takes the words after the command name, declares its flags with cli::Parser (so --help and
// the errors come for free), and returns the process exit code. Usage mistakes throw
// cli::UsageError (exit 2); runtime failures throw gt::Error (exit 1).
#pragma once

#include "tools/cli.h"

namespace gt::tools {

int cmd_info(const cli::Args& args);         // gentape.cpp
int cmd_demo(const cli::Args& args);         // demo.cpp
int cmd_train(const cli::Args& args);        // train.cpp
int cmd_eval(const cli::Args& args);         // vae_commands.cpp
int cmd_sample(const cli::Args& args);       // vae_commands.cpp
int cmd_reconstruct(const cli::Args& args);  // vae_commands.cpp
int cmd_interpolate(const cli::Args& args);  // vae_commands.cpp
int cmd_manifold(const cli::Args& args);     // vae_commands.cpp
int cmd_latents(const cli::Args& args);      // vae_commands.cpp
int cmd_encode(const cli::Args& args);       // vae_commands.cpp
int cmd_decode(const cli::Args& args);       // vae_commands.cpp
int cmd_trajectory(const cli::Args& args);   // ddpm_commands.cpp
int cmd_fid(const cli::Args& args);          // ddpm_commands.cpp
int cmd_classify(const cli::Args& args);     // use_commands.cpp
int cmd_outliers(const cli::Args& args);     // use_commands.cpp
int cmd_compare_ae_vae(const cli::Args& args);  // use_commands.cpp

}  // namespace gt::tools
